"""Wire formats shared by the emulated device and the host stack.

Protocol, not implementation: register offsets, opcodes, status codes and the byte
layouts of commands, completions and identify structures, declared once, with no
behaviour -- the role `include/linux/nvme.h` and `lightnvm.h` play for a driver and an
emulator alike. Neither side keeps a private copy.
"""
from .nvme import *  # noqa: F401,F403
from .lightnvm import *  # noqa: F401,F403
from .ox import *  # noqa: F401,F403
from .zns import *  # noqa: F401,F403
