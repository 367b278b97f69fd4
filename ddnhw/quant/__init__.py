"""Quantization-aware training (PyTorch): quantizers, QAT modules, training, export to the IR."""
from .quantizers import fake_quant, round_ste, pow2_weight_exponent, pow2_act_frac
from .modules import QuantInput, QuantLinear, QuantReLU, QuantMLP
from .export import export_mlp
from .schemes import ActSpec, SchemeMLP, WeightSpec, export_scheme_mlp
from .rnn import QuantGRU, QuantLSTM, QuantRNN, QuantSeqClassifier, export_seq

__all__ = ["fake_quant", "round_ste", "pow2_weight_exponent", "pow2_act_frac", "QuantInput",
           "QuantLinear", "QuantReLU", "QuantMLP", "export_mlp", "WeightSpec", "ActSpec", "SchemeMLP",
           "export_scheme_mlp", "QuantGRU", "QuantLSTM", "QuantRNN", "QuantSeqClassifier",
           "export_seq"]
