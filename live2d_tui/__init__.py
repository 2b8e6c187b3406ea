"""live2d-tui: live 2D classification of cryo-EM particles while a Warp session collects data.

Everything in this package except :mod:`live2d_tui.ui` is the headless core: it imports no
Textual and emits plain dataclass events (:mod:`live2d_tui.events`).
"""

__version__ = "0.1.0"
