"""Left-pane summary of the session: title, status, Warp folder, model, particles, engine."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from live2d_tui.events import SessionStatus
from live2d_tui.supervisor import SupervisorSnapshot

_STATUS_STYLE = {
    SessionStatus.STOPPED: "bold",
    SessionStatus.WAITING: "bold cyan",
    SessionStatus.RUNNING: "bold green",
    SessionStatus.STOPPING: "bold yellow",
    SessionStatus.FAILED: "bold red",
}


def session_text(snap: SupervisorSnapshot) -> Text:
    """The panel's lines for one snapshot."""
    text = Text()
    title = "Live 2D Classification"
    if snap.microscope_name:
        title += f" on {snap.microscope_name}"
    text.append(title + "\n", style="bold")
    text.append("Status: ")
    text.append(snap.status.label, style=_STATUS_STYLE.get(snap.status, "bold"))
    if snap.job_progress_text:
        text.append(f" · {snap.job_progress_text}")
    text.append("\n")
    text.append(f"Session: {snap.session_name or '—'}\n")
    text.append(f"Warp: {snap.warp_folder}\n", style="dim")
    if snap.warp is not None:
        w = snap.warp
        text.append(f"Model {w.model} · {w.pixel_size:.3g} Å/px · box {w.box_size}\n")
    else:
        text.append("Warp settings not read yet\n", style="dim")
    if snap.ingest is not None:
        i = snap.ingest
        line = f"Particles {i.particles_active:,} active · {i.particles_new:,} new"
        if snap.stream is not None:
            line += f" · next update at {snap.stream.batch:,}"
        elif i.next_threshold:
            line += f" · next job at {i.next_threshold:,}"  # (a staged streaming job: at once)
        text.append(line + "\n")
    else:
        text.append("Particles: not ingested yet\n", style="dim")
    text.append(f"Engine {snap.engine} · pool {snap.pool_size}\n", style="dim")
    if snap.next_trigger:
        text.append(snap.next_trigger + "\n", style="italic")
    if snap.last_error:
        text.append(f"⚠ {snap.last_error}\n", style="red")
    text.rstrip()
    return text


class SessionPanel(Static):
    """Shows :func:`session_text` of the latest snapshot."""

    DEFAULT_CSS = """
    SessionPanel { height: auto; padding: 0 1; }
    """

    _shown: Text | None = None

    def show(self, snap: SupervisorSnapshot) -> None:
        """Render a new snapshot (nothing when its text is what the panel already shows)."""
        # every core event brings a snapshot, most with the same text; an update asks for a
        # layout pass of the whole screen (tens of ms while a cycle loads the CPUs)
        text = session_text(snap)
        if text != self._shown:
            self._shown = text
            self.update(text)

    def show_message(self, message: str) -> None:
        """Show ``message`` instead of a session (e.g. it could not be opened)."""
        self._shown = None
        self.update(message)
