"""ddnhw: quantized neural networks to bit-exact, cosimulated FPGA hardware with open tools."""

__version__ = "0.1.0"


class DdnhwError(Exception):
    """A user-facing error: the message names the layer, file or value at fault."""


class Interrupted(DdnhwError):
    """The command was stopped by a signal (SIGINT, SIGTERM, ...): ``signum`` says which and
    ``exit_status`` is the shell's ``128 + signum``."""

    def __init__(self, message, signum=2):
        import signal
        super().__init__(message)
        self.signum = int(signum)
        self.signal_name = signal.Signals(self.signum).name
        self.exit_status = 128 + self.signum
