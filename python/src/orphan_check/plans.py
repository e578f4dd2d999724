"""Kill plans: how a scenario ends the agent.

Use the constants (`plans.SIGKILL`, `plans.INT_GROUP`, ...), `term_then_kill(grace)`,
or `named("...")` for any plan by its command-line name (`orphan-check run --kill`),
including plans newer than this package's constants.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._duration import Seconds, cli_duration


@dataclass(frozen=True)
class KillPlan:
    """A kill plan, by its command-line name (`sigkill`, `term-then-kill=5s`, ...)."""

    name: str

    def __str__(self) -> str:
        return self.name


#: SIGKILL to the agent's pid: the OOM killer, a budget kill, `kill -9`.
SIGKILL = KillPlan("sigkill")
#: SIGTERM to the agent's pid: `kill`, a stop without grace.
SIGTERM = KillPlan("sigterm")
#: SIGINT to the agent's process group: Ctrl-C in a terminal.
INT_GROUP = KillPlan("int-group")
#: SIGKILL to the agent's process group: `kill -9 -PGID`.
KILL_GROUP = KillPlan("kill-group")
#: SIGHUP to the agent's process group: the terminal closing.
HUP_GROUP = KillPlan("hup-group")
#: SIGKILL to a launcher the agent is started through: its IDE, terminal or supervisor dying.
PARENT_DEATH = KillPlan("parent-death")
#: No signal: the agent ends by itself (a task done, a budget hit, an exception).
OWN_EXIT = KillPlan("own-exit")
#: End of file on the agent's stdin: an MCP client or an editor going away.
CLOSE_STDIN = KillPlan("close-stdin")


def term_then_kill(grace: Seconds = 5.0) -> KillPlan:
    """SIGTERM, then SIGKILL after `grace` seconds if the agent still lives (`docker stop`)."""
    return KillPlan(f"term-then-kill={cli_duration(grace, 'the grace', positive=True)}")


def docker_stop(grace: Seconds = 10.0) -> KillPlan:
    """SIGTERM to the container's PID 1, `grace` seconds, then SIGKILL (`docker stop`)."""
    return KillPlan(f"docker-stop={cli_duration(grace, 'the grace', positive=True)}")


def close_stdin_then_kill(grace: Seconds = 5.0) -> KillPlan:
    """End of file on the agent's stdin, then SIGKILL after `grace` seconds."""
    return KillPlan(f"close-stdin-then-kill={cli_duration(grace, 'the grace', positive=True)}")


def named(name: str) -> KillPlan:
    """Any plan by its command-line name, e.g. `named("own-exit")`; the command checks it."""
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError(f"a kill plan name is one word, such as 'sigterm' (got {name!r})")
    return KillPlan(name)
