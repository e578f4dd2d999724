//! The page's style: one CSS string, inlined into the page's head, and the row heights
//! it repeats, which the timeline uses to place its overlay in pixels.

/// Height of a process or port row, px.
pub(super) const ROW: u32 = 28;
/// Height of one line of a survivor's details, px.
pub(super) const LINE: u32 = 18;
/// Vertical padding of a survivor's details, px.
pub(super) const DETAIL_PAD: u32 = 8;
/// Height of one lane of marker labels above the rows, px.
pub(super) const LANE: u32 = 17;
/// Height of the heading row of the ports, px.
pub(super) const HEADING: u32 = 26;

/// The page's style. The row heights repeat [`ROW`], [`LINE`], [`DETAIL_PAD`], [`LANE`]
/// and [`HEADING`].
pub(super) const CSS: &str = r#"
:root{--lbl:460px;--end:290px;--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#f6f8fa;
--surv:#d62839;--surv-bg:#fdeaec;--mono:ui-monospace,SFMono-Regular,"DejaVu Sans Mono",Menlo,Consolas,monospace}
*{box-sizing:border-box}
html{background:var(--bg)}
body{margin:0;color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","DejaVu Sans",sans-serif}
main{max-width:1480px;margin:0 auto;padding:20px 24px 40px}
code,pre{font-family:var(--mono);font-size:12.5px}
.muted{color:var(--muted)}
.bad{color:#b3121f}
h2{font-size:17px;margin:0 0 6px}
h2 .count{display:inline-block;min-width:22px;padding:0 7px;border-radius:11px;background:#eaeef2;font-size:13px;text-align:center}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin:0 0 16px}
.verdict{display:flex;gap:16px;align-items:center;border-radius:8px;padding:14px 18px;margin:0 0 16px;color:#fff}
.verdict.leak{background:#b3121f}
.verdict.clean{background:#1a7f37}
.verdict .word{font:700 26px/1 var(--mono);letter-spacing:1px;padding:10px 14px;border:2px solid rgba(255,255,255,.7);border-radius:6px}
.verdict h1{font-size:20px;margin:0 0 2px}
.verdict p{margin:0;opacity:.95}
.verdict .muted{color:inherit;opacity:.8}
.facts dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 18px;margin:0}
.facts dt{color:var(--muted)}
.facts dd{margin:0}
.wrap{white-space:pre-wrap;word-break:break-all}
.note{margin:0 0 8px;font-size:12.5px}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:4px 18px;padding:0;margin:0 0 10px;font-size:12.5px;color:var(--muted)}
.legend li{display:flex;align-items:center;gap:6px}
.legend .bar,.legend .lead{position:static;display:inline-block;width:26px;height:10px;margin:0}
.legend .swatch{display:inline-block;width:0;height:14px;border-left:2px dashed}
.tl{position:relative;font-size:13px;overflow:hidden}
.row{display:flex;align-items:center;height:28px;border-bottom:1px solid #eaeef2}
.row.axis{align-items:flex-end;border-bottom:1px solid var(--line)}
.row.heading{height:26px;background:#f6f8fa;font-weight:600;color:var(--muted);border-top:1px solid var(--line)}
.row:hover{background:#f3f6fb}
.row.surv,.row.held{background:var(--surv-bg)}
.row.surv:hover,.row.held:hover{background:#fbdadd}
.lbl{flex:none;width:var(--lbl);padding:0 8px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.trk{flex:1;position:relative;height:100%}
.end{flex:none;width:var(--end);padding:0 10px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;font-size:12.5px}
.tree{font-family:var(--mono);color:#8c959f;white-space:pre}
.pid{display:inline-block;min-width:58px;font-family:var(--mono);color:var(--muted);text-align:right;margin-right:8px}
.st{display:inline-block;min-width:106px;margin-right:6px;padding:1px 6px;border-radius:4px;font:600 11px/16px var(--mono);text-align:center;background:#eaeef2;color:#424a53}
.st-surv,.st-held{background:#b3121f;color:#fff}
.st-sigkill{background:#bc4c00;color:#fff}
.st-free{background:#dafbe1;color:#116329}
.st-gone{background:none;border:1px solid var(--line)}
.trk i{position:absolute;top:8px;height:12px;border-radius:2px}
i.bar{display:block}
.b-exit{background:#8c959f}
.b-killed{background:#57606a}
.b-gone{background:linear-gradient(90deg,#8c959f,rgba(140,149,159,0))}
.b-sigkill{background:#e16f24}
.b-surv{background:var(--surv);border-radius:2px 0 0 2px}
.p-free{background:#218bff}
.p-held{background:#218bff;border-radius:2px 0 0 2px}
i.lead{display:block;background:repeating-linear-gradient(135deg,#c5ccd3 0 2px,transparent 2px 5px);border-radius:0}
.trk i.cap{width:3px;margin-left:-2px;top:6px;height:16px;border-radius:1px}
.trk i.dot{width:10px;height:10px;top:9px;margin-left:-5px;border-radius:50%}
.trk i.arrow{width:0;height:0;top:6px;border-radius:0;border-top:8px solid transparent;border-bottom:8px solid transparent;border-left:10px solid var(--surv)}
.trk i.arrow.port{border-left-color:#218bff}
.who{display:inline-block;margin-right:6px;padding:0 5px;border-radius:3px;background:#ddf4ff;color:#0550ae;font-size:11px;line-height:16px}
.tag{display:inline-block;padding:0 6px;margin-left:2px;border-radius:9px;background:#fff;border:1px solid #f1aeb5;color:#b3121f;font-size:11.5px;line-height:16px}
.detail{position:relative;z-index:2;background:#fff6f7;border-bottom:1px solid #f5c2c7;padding:4px 0 0 188px;font-size:12.5px;color:#57181d}
.detail .tree{font-size:13px}
.detail div{height:18px;line-height:18px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;padding-right:12px}
.detail b{display:inline-block;min-width:74px;color:#b3121f;font-weight:600}
.ml{position:absolute;z-index:3;white-space:nowrap;font-size:11.5px;line-height:15px;padding:0 3px;background:#fff;border-radius:3px}
.ml.mid{transform:translateX(-50%)}
.ml.right{transform:translateX(-100%)}
.ovl{position:absolute;top:0;left:var(--lbl);width:calc(100% - var(--lbl) - var(--end));pointer-events:none;z-index:1;overflow:visible}
.ovl line{stroke-width:1.5}
.ovl line.link{stroke:#afb8c1;stroke-width:1}
.ovl line.link.gone{stroke-dasharray:2 3}
.ovl circle.link{fill:#afb8c1}
.m-ready{color:#0969da;stroke:#0969da;stroke-dasharray:5 3}
.m-signal{color:#9a6700;stroke:#bf8700;stroke-dasharray:5 3}
.m-quiet{color:#1a7f37;stroke:#1a7f37;stroke-dasharray:2 3}
.m-deadline{color:#82071e;stroke:#82071e;stroke-dasharray:6 2 1 2}
.ml.m-ready,.ml.m-signal,.ml.m-quiet,.ml.m-deadline{border:1px solid currentColor}
.survivors .card{border:1px solid #f5c2c7;border-left:4px solid #e5534b;border-radius:6px;padding:8px 12px;margin:8px 0;background:#fffafa}
.card h3{font-size:14px;margin:0 0 4px;font-weight:600}
.card dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0;font-size:13px}
.card dt{color:var(--muted)}
.card dd{margin:0}
.hint{font-weight:600}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eaeef2}
pre{background:#f6f8fa;border:1px solid #eaeef2;border-radius:6px;padding:8px 10px;margin:4px 0 10px;white-space:pre-wrap;word-break:break-all;max-height:420px;overflow:auto}
.output h3{font-size:13px;margin:8px 0 0;color:var(--muted)}
details.json{margin:0 0 16px}
details.json summary{cursor:pointer;color:var(--muted)}
footer{color:var(--muted);font-size:12px;text-align:center}
@media (max-width:1280px){:root{--lbl:380px;--end:230px}}
@media (max-width:1000px){:root{--lbl:300px;--end:180px}.pid{min-width:48px}.st{min-width:92px}.detail{padding-left:160px}}
"#;
