"""The guest CPU: unicorn x86-64 executing tiny load/store stubs against BAR0.

Every register access the host driver makes is a real guest instruction, so the device
sees it as a bus access (an MMIO callback), never as a Python method call.
"""

from unicorn import UC_ARCH_X86, UC_MODE_64, UC_PROT_ALL, Uc
from unicorn.x86_const import UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDI, UC_X86_REG_RSI

# Stub layout in the first guest page after the zero page. Written once, never patched,
# so unicorn's translation cache never runs stale code.
STUB_BASE = 0x1000
STUB_WRITE32 = STUB_BASE + 0x00     # mov [rdi], esi ; hlt
STUB_READ32 = STUB_BASE + 0x10      # mov eax, [rdi] ; hlt
STUB_WRITE_MANY = STUB_BASE + 0x20  # for rcx entries at rsi: mov [entry.addr], entry.val
BATCH_TABLE = 0x2000                # (u64 address, u64 value) pairs
BATCH_MAX = 256
RESERVED_END = 0x10000              # guest memory the OS may use starts here

_STUBS = {
    STUB_WRITE32: bytes([0x89, 0x37, 0xF4]),
    STUB_READ32: bytes([0x8B, 0x07, 0xF4]),
    STUB_WRITE_MANY: bytes([
        0x48, 0x8B, 0x3E,          # mov rdi, [rsi]
        0x8B, 0x46, 0x08,          # mov eax, [rsi+8]
        0x89, 0x07,                # mov [rdi], eax
        0x48, 0x83, 0xC6, 0x10,    # add rsi, 16
        0x48, 0xFF, 0xC9,          # dec rcx
        0x75, 0xEF,                # jnz loop
        0xF4,                      # hlt
    ]),
}


class Cpu:
    """Owns the unicorn instance; maps guest RAM and MMIO windows."""

    def __init__(self, ram):
        self._ram = ram
        self.uc = Uc(UC_ARCH_X86, UC_MODE_64)
        self.uc.mem_map_ptr(0, ram.size, UC_PROT_ALL, ram.address)
        for addr, code in _STUBS.items():
            ram.array[addr:addr + len(code)] = bytearray(code)
        self._table = ram.array[BATCH_TABLE:BATCH_TABLE + 16 * BATCH_MAX].view("<u8")
        self._reg_write = self.uc.reg_write
        self._reg_read = self.uc.reg_read
        self._start = self.uc.emu_start

    def map_mmio(self, base: int, size: int, read_cb, write_cb) -> None:
        """read_cb(offset, size) -> int; write_cb(offset, size, value)."""
        self.uc.mmio_map(base, size,
                         lambda uc, off, sz, ud: read_cb(off, sz), None,
                         lambda uc, off, sz, val, ud: write_cb(off, sz, val), None)

    def store32(self, addr: int, value: int) -> None:
        self._reg_write(UC_X86_REG_RDI, addr)
        self._reg_write(UC_X86_REG_RSI, value & 0xFFFFFFFF)
        self._start(STUB_WRITE32, 0)

    def load32(self, addr: int) -> int:
        self._reg_write(UC_X86_REG_RDI, addr)
        self._start(STUB_READ32, 0)
        return self._reg_read(UC_X86_REG_RAX) & 0xFFFFFFFF

    def store32_many(self, pairs) -> None:
        """Several 32-bit stores in one CPU run (e.g. an SQ tail and a CQ head doorbell)."""
        n = len(pairs)
        if n == 0:
            return
        if n == 1:
            self.store32(*pairs[0])
            return
        if n > BATCH_MAX:
            raise ValueError(f"at most {BATCH_MAX} stores per batch")
        flat = [v for addr, val in pairs for v in (addr, val & 0xFFFFFFFF)]
        self._table[:2 * n] = flat
        self._reg_write(UC_X86_REG_RSI, BATCH_TABLE)
        self._reg_write(UC_X86_REG_RCX, n)
        self._start(STUB_WRITE_MANY, 0)

    def close(self) -> None:
        self.uc = None


