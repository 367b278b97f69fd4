"""Board profiles: one small entry per supported dev board, on top of amaranth-boards.

A profile names the amaranth-boards platform, the device budget the build reports are compared
with, the pins the board top uses, and the openFPGALoader board name used to flash it. Adding a
board is one :class:`BoardProfile` entry in :data:`BOARDS`.
"""

from dataclasses import dataclass
from importlib import import_module
from types import MappingProxyType

from amaranth.build import Attrs, PinsN, Resource
from amaranth_boards.resources import UARTResource

from .. import DdnhwError
from ..hw.family import FAMILIES, Budget, Family

__all__ = ["BoardProfile", "BOARDS", "get_board", "list_boards"]


@dataclass(frozen=True)
class BoardProfile:
    """A dev board the toolkit can build for.

    ``platform`` is ``"module:Class"`` of an amaranth-boards platform (imported lazily).
    ``budget`` holds the device capacity in the same units as the build report keys
    (``luts``, ``dsps``, ``brams``, and for iCE40 ``spram_kbit``). ``uart``/``led`` are the
    resource names the board top requests. ``synth_opts``/``nextpnr_opts`` are passed to the
    amaranth template overrides of the same name. ``fpga`` is the :class:`~ddnhw.hw.family.Family`
    (tools, cells, estimate coefficients) named by ``family``; :meth:`budget_for` the
    :class:`~ddnhw.hw.family.Budget` a design may use.
    """

    name: str
    platform: str
    family: str                     # "ice40" or "ecp5": the FPGA family (see ``fpga``)
    device: str
    clock_mhz: float
    budget: MappingProxyType
    loader_board: str               # openFPGALoader -b argument
    uart: str = "uart"
    led: str = "led"
    synth_opts: tuple = ()
    nextpnr_opts: tuple = ()
    notes: str = ""
    extra_resources: tuple = ()     # amaranth Resources added to the platform (e.g. UART pins)
    loader_modes: tuple = ("sram", "flash")   # what openFPGALoader can write on this board

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"board {self.name!r}: unknown family {self.family!r} (have: "
                             f"{', '.join(sorted(FAMILIES))})")
        object.__setattr__(self, "budget", MappingProxyType(dict(self.budget)))

    @property
    def fpga(self) -> Family:
        """The board's FPGA :class:`~ddnhw.hw.family.Family`."""
        return FAMILIES[self.family]

    def budget_for(self) -> Budget:
        """The device's :class:`~ddnhw.hw.family.Budget` for a design: its LUTs, DSPs and
        BRAMs; flip-flops as many as LUTs (one per iCE40 logic cell or ECP5 slice half)."""
        b = self.budget
        return Budget(family=self.family, luts=b.get("luts"),
                      ffs=b.get("ffs", b.get("luts")), dsps=b.get("dsps"),
                      brams=b.get("brams"),
                      spram=b["spram_kbit"] // 256 if b.get("spram_kbit") else None)

    def make_platform(self):
        """A fresh amaranth platform instance (platforms can be built only once)."""
        module_name, _, class_name = self.platform.partition(":")
        try:
            cls = getattr(import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            raise DdnhwError(f"board {self.name!r}: cannot import platform {self.platform!r} "
                             f"({exc}); install amaranth-boards") from None
        platform = cls()
        if self.extra_resources:
            platform.add_resources(list(self.extra_resources))
        return platform


BOARDS = {
    "icebreaker": BoardProfile(
        name="icebreaker",
        platform="amaranth_boards.icebreaker:ICEBreakerPlatform",
        family="ice40",
        device="iCE40UP5K-SG48",
        clock_mhz=12.0,
        budget={"luts": 5280, "dsps": 8, "brams": 30, "spram_kbit": 1024},
        loader_board="ice40_generic",  # openFPGALoader also accepts "icebreaker"
        loader_modes=("flash",),       # the iCE40 is loaded from its SPI flash
        # UP5K has SB_MAC16: let yosys infer them (synth_ice40 does not without -dsp).
        synth_opts=("-dsp",),
        notes="luts are ICESTORM_LC logic cells (each one LUT4 + carry + DFF).",
    ),
}

_ECP5_BUDGET = {  # nextpnr's TRELLIS_COMB count (LUT4s), MULT18X18D, DP16KD
    "12f": {"luts": 12288, "dsps": 28, "brams": 32},
    "25f": {"luts": 24288, "dsps": 28, "brams": 56},
    "45f": {"luts": 43848, "dsps": 72, "brams": 108},
    "85f": {"luts": 83640, "dsps": 156, "brams": 208},
}
_ECP5_NOTES = "luts are TRELLIS_COMB slice halves (LUT4, half a CCU2C, or feed-through)."



def _ecp5(name, platform, device, clock_mhz, size, loader_board, **extra):
    """An ECP5 board profile: its family's budget for ``size`` and nextpnr's router2."""
    return BoardProfile(name=name, platform=platform, family="ecp5", device=device,
                        clock_mhz=clock_mhz, budget=_ECP5_BUDGET[size],
                        loader_board=loader_board, nextpnr_opts=("--router", "router2"),
                        **extra)


for _size in ("12f", "25f", "45f", "85f"):
    BOARDS[f"ulx3s-{_size}"] = _ecp5(
        f"ulx3s-{_size}", f"amaranth_boards.ulx3s:ULX3S_{_size.upper()}_Platform",
        f"LFE5U-{_size.upper()}-6BG381C", 25.0, _size, "ulx3s",
        notes=_ECP5_NOTES + " UART: the FTDI US1 port (second USB interface).")

# The OrangeCrab has no USB-UART: its USB port goes to the FPGA (and the DFU bootloader). The
# link uses the Feather header pins 0 (RX, into the FPGA) and 1 (TX) with an external 3.3 V
# USB-UART adapter; the LEDs are the RGB LED's red and green.
_ORANGECRAB_EXTRA = (
    UARTResource(0, rx="0", tx="1", conn=("io", 0), attrs=Attrs(IO_TYPE="LVCMOS33",
                                                                   PULLMODE="UP")),
    Resource("led", 0, PinsN("K4", dir="o"), Attrs(IO_TYPE="LVCMOS33")),
    Resource("led", 1, PinsN("M3", dir="o"), Attrs(IO_TYPE="LVCMOS33")),
    Resource("led", 2, PinsN("J3", dir="o"), Attrs(IO_TYPE="LVCMOS33")),
)
for _size in ("25f", "85f"):
    BOARDS[f"orangecrab-{_size}"] = _ecp5(
        f"orangecrab-{_size}",
        f"amaranth_boards.orangecrab_r0_2:OrangeCrabR0_2_{_size.upper()}Platform",
        f"LFE5U-{_size.upper()}-8MG285C", 48.0, _size,
        "orangecrab",   # DFU bootloader: hold the button while plugging in
        extra_resources=_ORANGECRAB_EXTRA, loader_modes=("flash",),
        notes=_ECP5_NOTES + " UART on Feather pins 0 (rx) / 1 (tx) via a 3.3 V USB-UART "
              "adapter; flashing through the DFU bootloader (no SRAM load).")


def list_boards():
    """Names of the supported boards, sorted."""
    return sorted(BOARDS)


def get_board(board):
    """The :class:`BoardProfile` for ``board`` (a name or a profile)."""
    if isinstance(board, BoardProfile):
        return board
    try:
        return BOARDS[board]
    except (KeyError, TypeError):
        raise DdnhwError(f"unknown board {board!r}; supported boards: "
                         f"{', '.join(list_boards())}") from None
