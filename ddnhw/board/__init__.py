"""Board support: profiles on top of amaranth-boards, a measurement top, builds and reports."""

from .profiles import BOARDS, BoardProfile, get_board, list_boards
from .top import MeasureTop
from .build import build, toolchain_env

__all__ = ["BOARDS", "BoardProfile", "get_board", "list_boards", "MeasureTop", "build",
           "toolchain_env"]
