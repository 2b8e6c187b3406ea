"""The half-set FRC curve of one class as a terminal plot (textual-plotext).

x is the spatial frequency in 1/Å (ring r of an N-pixel box at pixel p is r/(N·p)), y the FRC;
a flat line marks the 0.143 threshold, and the title gives the crossing (or why there is none).
Plotting is cheap (a few dozen points); the widget redraws when it is given a new curve.
"""

from __future__ import annotations

from textual_plotext import PlotextPlot

from live2d_tui.results.quality import THRESHOLD, ClassQuality


def frc_points(
    curve: tuple[float, ...], box: int, pixel_size: float
) -> tuple[list[float], list[float]]:
    """(frequency in 1/Å, FRC) of rings 1 … N/2."""
    rings = range(1, len(curve))
    return [r / (box * pixel_size) for r in rings], [curve[r] for r in rings]


def frc_title(quality: ClassQuality) -> str:
    """The plot's title: the figure, or why there is none."""
    if quality.resolution is not None:
        return f"half-set FRC: {THRESHOLD} at {quality.resolution:.1f} Å"
    return f"half-set FRC: no figure ({quality.reason})"


class FrcPlot(PlotextPlot):
    """The FRC curve of a class, or a note when there is none yet."""

    DEFAULT_CSS = """
    FrcPlot { height: 12; width: 1fr; }
    """

    def show(self, quality: ClassQuality | None, box: int, pixel_size: float) -> None:
        """Plot ``quality``'s curve (``None``: the estimate is not there yet)."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if quality is None or not quality.curve:
            plt.title("half-set FRC: being computed" if quality is None else frc_title(quality))
            self.refresh()
            return
        x, y = frc_points(quality.curve, box, pixel_size)
        plt.plot(x, y, marker="braille")
        plt.plot(x, [THRESHOLD] * len(x), marker="dot")
        plt.ylim(-0.2, 1.05)
        plt.xlabel("1/Å")
        plt.title(frc_title(quality))
        self.refresh()
