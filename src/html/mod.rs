//! The picture of a run: one self-contained HTML page drawn from a [`Report`].
//!
//! The page is a CI artifact: it must open anywhere, offline, long after the run, and
//! show at a glance what ran, when it was killed, and what lived on. So everything is
//! inline (CSS, one SVG overlay), nothing is loaded and nothing runs: the page declares a
//! content security policy of `default-src 'none'` with inline styles only, so even
//! markup that slipped past the escaping could neither run a script nor reach the
//! network. Every text that comes from the run (command lines, output, paths) goes
//! through [`escape::esc`].
//!
//! One file per part of the page, in the order it is drawn:
//!
//! - `page`: [`Report::to_html`] (defined here, on the page's side, so that the report
//!   never imports its page), the shell (head, policy, footer), the verdict banner and
//!   the facts;
//! - `timeline`: the timeline section, its marker lines and the overlay, on the time
//!   axis of `axis`, its rows in the order of the tree (`tree`), each drawn by `rows`;
//! - `evidence`: the survivor cards, the files, the agent's output, the JSON;
//! - `escape` (HTML escaping), `words` (times, escape names, short commands) and
//!   `style` (the CSS and the row heights it repeats), which every part uses.
//!
//! [`Report`]: crate::Report
//! [`Report::to_html`]: crate::Report::to_html

mod axis;
mod escape;
mod evidence;
mod page;
mod rows;
mod style;
mod timeline;
mod tree;
mod words;
