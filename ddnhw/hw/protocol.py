"""The block protocol: what a hardware block costs and how it times, known without building it.

Every component ``X`` of :mod:`ddnhw.hw` has a spec ``XSpec`` (a :class:`BlockSpec`, plain
Python: creating one creates no Amaranth ``Elaboratable``) whose constructor takes exactly
``X``'s arguments and validates them (``TypeError``/``ValueError`` naming the bad value), so a
rejected block never becomes a component. A spec states:

- ``latency``, ``ii`` (ints, cycles): as documented by the component;
- ``in_shape``, ``out_shape``: the payload shapes of its input and output streams (a tuple of
  shapes, one per port, for a block with several input or output streams);
- ``children``: the specs it is made of (a :class:`~ddnhw.hw.Chain`'s blocks, a
  :class:`~ddnhw.hw.recurrent.Recurrent`'s MAC engine), ``()`` for a leaf; ``chain``: True
  when the block is exactly its children connected in a row;
- :meth:`BlockSpec.cycle_model`: a model of the block's valid/ready control (the same
  registers and conditions as its ``elaborate``, nothing else) with ``valid()``,
  ``ready(out_ready)`` and ``step(fire_in, out_ready)``; see :class:`CycleModel`;
- :meth:`BlockSpec.features`: structural cost counts, independent of the FPGA family, in the
  one schema of :func:`cost_features` (``ddnhw.lower.estimate`` weights them per family);
- :meth:`BlockSpec.build`: the component (``X.from_spec(spec)``, sharing this spec).

A component keeps its constructor (``X(...)`` builds ``XSpec(...)`` first, so invalid
arguments raise before any component exists), holds the spec as ``self.spec`` and reads every
public spec attribute through it (``component.latency is component.spec.latency``).
"""
from __future__ import annotations

from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BlockSpec", "SpecComponent", "CycleModel", "ChainModel", "cost_features",
           "FEATURE_KEYS", "spec_of"]

FEATURE_KEYS = ("luts", "ffs", "memories", "brams", "dsp_muls", "const_muls", "var_muls",
                "parts")


def cost_features(luts=None, ffs=None, memories=(), brams=0, dsp_muls=0, const_muls=(),
                  var_muls=(), parts=()) -> dict:
    """The feature schema every :meth:`BlockSpec.features` returns (all keys always present):

    - ``luts``: ``{coefficient name: count}``: logic as counts, each weighted by the family's
      estimate coefficient of that name (``"raw"``: weight 1, a count already in LUTs);
    - ``ffs``: ``{coefficient name: count}``: flip-flops, the same way (``"raw"``: as counted);
    - ``memories``: ``((width, depth), ...)`` constant memories (ROMs): in block RAM when the
      family's ROM-in-LUT threshold says so, else logic (the family's ``rom`` coefficient per
      bit);
    - ``brams``: block RAM primitives counted by the block itself;
    - ``dsp_muls``: variable multipliers mapped one per DSP block;
    - ``const_muls``: groups of ``(x_bits, multiplier, signed)`` constant multiplications;
      synthesis shares the members of a group (they are used one at a time), so a group costs
      the DSPs of its costliest member under the family's DSP rule;
    - ``var_muls``: ``((a_bits, b_bits), ...)`` variable products (the family's DSP rule);
    - ``parts``: specs whose estimates add to this one's (a chain's blocks, an engine).
    """
    return {"luts": dict(luts or {}), "ffs": dict(ffs or {}),
            "memories": tuple((int(w), int(d)) for w, d in memories), "brams": int(brams),
            "dsp_muls": int(dsp_muls),
            "const_muls": tuple(tuple((int(b), int(m), bool(s)) for b, m, s in g)
                                for g in const_muls),
            "var_muls": tuple((int(a), int(b)) for a, b in var_muls), "parts": tuple(parts)}


class CycleModel:
    """The handshake control of a block with one input and one output stream, stepped one
    clock cycle at a time without data.

    Per cycle, with the current state: ``valid()`` is the output's ``valid``; ``ready(
    out_ready)`` the input's ``ready`` given the consumer's ``ready``; then ``step(fire_in,
    out_ready)`` advances the state by one clock edge (``fire_in``: an input handshake this
    cycle). Blocks with several streams document their variant (per-port tuples)."""

    def valid(self):  # pragma: no cover - interface
        raise NotImplementedError

    def ready(self, out_ready):  # pragma: no cover - interface
        raise NotImplementedError

    def step(self, fire_in, out_ready):  # pragma: no cover - interface
        raise NotImplementedError


class ChainModel(CycleModel):
    """Models connected in a row (the first one's input, the last one's output): per cycle
    the readies settle from the output back, then every model steps with its handshakes."""

    def __init__(self, models):
        self.models = list(models)
        if not self.models:
            raise ValueError("ChainModel needs at least one model")

    def valid(self):
        return self.models[-1].valid()

    def _readies(self, out_ready):
        ready = [True] * len(self.models) + [out_ready]
        for k in range(len(self.models) - 1, -1, -1):
            ready[k] = self.models[k].ready(ready[k + 1])
        return ready

    def ready(self, out_ready):
        return self._readies(out_ready)[0]

    def step(self, fire_in, out_ready):
        ready = self._readies(out_ready)
        valid = [None] + [m.valid() for m in self.models[:-1]]
        for k, m in enumerate(self.models):
            fire = fire_in if k == 0 else bool(valid[k] and ready[k])
            m.step(fire, ready[k + 1])


class BlockSpec:
    """Base class of the block specs (see the module docstring for the contract).

    Subclasses set ``latency``, ``ii``, ``in_shape``, ``out_shape`` (and ``children`` when
    they have any) in their constructor and implement :meth:`cycle_model` and
    :meth:`features`. ``component`` is the component class (set by :class:`SpecComponent`)."""

    component = None
    children = ()
    chain = False       # True: the block is its children connected in a row, nothing else

    def cycle_model(self):
        """A fresh :class:`CycleModel` of this block in its reset state."""
        raise NotImplementedError(f"{type(self).__name__} has no cycle model")

    def features(self) -> dict:
        """Structural cost counts (:func:`cost_features`). The default, for blocks that count
        their own logic and registers (``estimate["luts"]``, ``estimate["ffs"]``, uncalibrated):
        those counts as they are."""
        est = getattr(self, "estimate", None)
        if est is None:
            raise NotImplementedError(f"{type(self).__name__} has no cost features")
        return cost_features(luts={"raw": est["luts"]}, ffs={"raw": est["ffs"]})

    def ports(self) -> dict:
        """The component's signature members (default: one ``i``/``o`` stream pair)."""
        return {"i": In(stream.Signature(self.in_shape)),
                "o": Out(stream.Signature(self.out_shape))}

    def build(self):
        """The component (an Amaranth ``wiring.Component``) of this spec."""
        if self.component is None:  # pragma: no cover - every spec has one
            raise TypeError(f"{type(self).__name__} has no component")
        return self.component.from_spec(self)


def spec_of(block) -> BlockSpec:
    """``block`` itself when it is a :class:`BlockSpec`, else its ``spec`` (a component)."""
    if isinstance(block, BlockSpec):
        return block
    spec = getattr(block, "spec", None)
    if not isinstance(spec, BlockSpec):
        raise TypeError(f"{block!r} is neither a block spec nor a component with one")
    return spec


class SpecComponent(wiring.Component):
    """Base class of the components: ``X(*args)`` validates ``X.Spec(*args)`` before the
    component exists, keeps it as ``self.spec`` and forwards reads of public attributes the
    component does not have to it. Assigning a spec attribute on the component is an error
    (the spec is the one source of ``latency``, ``ii`` and the parameters).

    Subclasses: ``class X(SpecComponent, spec=XSpec)``; their ``__init__`` calls
    :meth:`_setup` (``from_spec`` calls it too, without ``__init__``)."""

    Spec = None

    def __init_subclass__(cls, spec=None, **kwargs):
        super().__init_subclass__(**kwargs)
        if spec is not None:
            cls.Spec = spec
            spec.component = cls

    def __new__(cls, *args, src_loc_at=0, **kwargs):
        spec = cls.Spec(*args, **kwargs)          # raises before any component exists
        self = super().__new__(cls, src_loc_at=src_loc_at + 1)
        object.__setattr__(self, "spec", spec)
        return self

    def __init__(self, *args, **kwargs):
        self._setup()

    @classmethod
    def from_spec(cls, spec):
        """The component of ``spec`` (an instance of ``cls.Spec``), without re-validating."""
        if not isinstance(spec, cls.Spec):
            raise TypeError(f"{cls.__name__}.from_spec needs a {cls.Spec.__name__}, not "
                            f"{spec!r}")
        self = wiring.Component.__new__(cls, src_loc_at=1)
        object.__setattr__(self, "spec", spec)
        self._setup()
        return self

    def _setup(self):
        wiring.Component.__init__(self, self.spec.ports())

    def __getattr__(self, name):
        spec = self.__dict__.get("spec")
        if spec is None or name.startswith("_"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(spec, name)

    def __setattr__(self, name, value):
        spec = self.__dict__.get("spec")
        if (spec is not None and not name.startswith("_") and name not in self.__dict__
                and hasattr(spec, name)):
            raise AttributeError(f"{type(self).__name__}.{name} is read from its spec; pass it "
                                 f"to the constructor instead of assigning {value!r}")
        object.__setattr__(self, name, value)
