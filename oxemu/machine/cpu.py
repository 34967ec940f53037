"""The guest CPU: unicorn x86-64 executing tiny load/store stubs against BAR0.

Every register access the host driver makes is a real guest instruction, so the device
sees it as a bus access (an MMIO callback), never as a Python method call.
"""

import ctypes
import struct

from unicorn import UC_ARCH_X86, UC_MODE_64, UC_PROT_ALL, Uc, UcError

_PAIR = struct.Struct("<QQ")
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")

# Stub layout in the first guest page after the zero page. Written once, never patched,
# so unicorn's translation cache never runs stale code. The stubs take their operands from
# guest memory, not from registers: setting a register through unicorn costs more than
# the whole store.
STUB_BASE = 0x1000
STUB_READ32 = STUB_BASE + 0x00      # eax = [[READ_ADDR]] ; [READ_VALUE] = eax
STUB_WRITE_MANY = STUB_BASE + 0x40  # for [BATCH_COUNT] entries at BATCH_TABLE: mov [addr], val
STUB_WRITE1 = STUB_BASE + 0x80      # the first entry of BATCH_TABLE only (a doorbell: no loop)
BATCH_COUNT = 0x1FF0                # u64: entries in the table
READ_ADDR = 0x1FE0                  # u64: the address STUB_READ32 loads from
READ_VALUE = 0x1FE8                 # u32: what it loaded
BATCH_TABLE = 0x2000                # (u64 address, u64 value) pairs
BATCH_MAX = 256
RESERVED_END = 0x10000              # guest memory the OS may use starts here


def _disp32(v: int) -> list:
    return list(v.to_bytes(4, "little"))


_STUBS = {
    STUB_READ32: bytes([
        0x48, 0x8B, 0x3C, 0x25, *_disp32(READ_ADDR),     # mov rdi, [READ_ADDR]
        0x8B, 0x07,                                      # mov eax, [rdi]
        0x89, 0x04, 0x25, *_disp32(READ_VALUE),          # mov [READ_VALUE], eax
        0xF4,                                            # hlt
    ]),
    STUB_WRITE_MANY: bytes([
        0x48, 0xC7, 0xC6, *_disp32(BATCH_TABLE),         # mov rsi, BATCH_TABLE
        0x48, 0x8B, 0x0C, 0x25, *_disp32(BATCH_COUNT),   # mov rcx, [BATCH_COUNT]
        0x48, 0x8B, 0x3E,          # loop: mov rdi, [rsi]
        0x8B, 0x46, 0x08,          # mov eax, [rsi+8]
        0x89, 0x07,                # mov [rdi], eax
        0x48, 0x83, 0xC6, 0x10,    # add rsi, 16
        0x48, 0xFF, 0xC9,          # dec rcx
        0x75, 0xEF,                # jnz loop
        0xF4,                      # hlt
    ]),
    STUB_WRITE1: bytes([
        0x48, 0x8B, 0x3C, 0x25, *_disp32(BATCH_TABLE),     # mov rdi, [BATCH_TABLE]
        0x8B, 0x04, 0x25, *_disp32(BATCH_TABLE + 8),       # mov eax, [BATCH_TABLE + 8]
        0x89, 0x07,                                        # mov [rdi], eax
        0xF4,                                              # hlt
    ]),
}


def _engine():
    """unicorn 2.1's C entry points and MMIO callback types, when this build has them:
    callbacks registered with them reach the device without the binding's two Python
    frames per access, and a run starts without its wrapper (a third of a doorbell's
    cost); None on other builds, which use the public API."""
    try:
        from unicorn.unicorn_py3 import unicorn as ucmod
        lib = ucmod.uclib
        # uc_emu_start without the binding's argument types, called with ready-made ctypes
        # values: converting five Python ints costs as much as the run itself
        run = lib._FuncPtr(("uc_emu_start", lib))
        run.restype = ctypes.c_int
        return lib, ucmod.MMIO_READ_CFUNC, ucmod.MMIO_WRITE_CFUNC, run
    except (ImportError, AttributeError):
        return None


class Cpu:
    """Owns the unicorn instance; maps guest RAM and MMIO windows."""

    def __init__(self, ram):
        self._ram = ram
        self.uc = Uc(UC_ARCH_X86, UC_MODE_64)
        self.uc.mem_map_ptr(0, ram.size, UC_PROT_ALL, ram.address)
        for addr, code in _STUBS.items():
            ram.array[addr:addr + len(code)] = bytearray(code)
        self._mem = memoryview(ram.array)
        self._start = lambda begin: self.uc.emu_start(begin, 0)
        self._callbacks = []          # C callbacks must live as long as the mapping
        self._exc = None              # an exception a callback raised, re-raised by the run
        eng = _engine()
        handle = getattr(self.uc, "_uch", None)
        self._fast = eng if eng is not None and handle is not None else None
        if self._fast is not None:
            run = self._fast[3]
            begins = {a: ctypes.c_uint64(a) for a in _STUBS}
            zero, none = ctypes.c_uint64(0), ctypes.c_size_t(0)

            def start(begin):
                self._exc = None
                status = run(handle, begins[begin], zero, zero, none)
                if status:
                    raise UcError(status)
                if self._exc is not None:
                    exc, self._exc = self._exc, None
                    raise exc
            self._start = start

    def map_mmio(self, base: int, size: int, read_cb, write_cb) -> None:
        """read_cb(offset, size) -> int; write_cb(offset, size, value). An exception either
        raises stops the CPU and is re-raised by the run, with RIP on the access."""
        if self._fast is None:
            self.uc.mmio_map(base, size,
                             lambda uc, off, sz, ud: read_cb(off, sz), None,
                             lambda uc, off, sz, val, ud: write_cb(off, sz, val), None)
            return
        lib, rtype, wtype, _ = self._fast
        handle = self.uc._uch

        def rcb(h, off, sz, ud):
            try:
                return read_cb(off, sz)
            except BaseException as e:          # noqa: BLE001 - stop the CPU, re-raise after
                if self._exc is None:
                    self._exc = e
                lib.uc_emu_stop(handle)
                return 0

        def wcb(h, off, sz, val, ud):
            try:
                write_cb(off, sz, val)
            except BaseException as e:          # noqa: BLE001
                if self._exc is None:
                    self._exc = e
                lib.uc_emu_stop(handle)

        r, w = rtype(rcb), wtype(wcb)
        self._callbacks.append((r, w))
        status = lib.uc_mmio_map(handle, base, size, r, None, w, None)
        if status:
            raise UcError(status)

    def store32(self, addr: int, value: int) -> None:
        _PAIR.pack_into(self._mem, BATCH_TABLE, addr, value & 0xFFFFFFFF)
        self._start(STUB_WRITE1)

    def load32(self, addr: int) -> int:
        _U64.pack_into(self._mem, READ_ADDR, addr)
        self._start(STUB_READ32)
        return _U32.unpack_from(self._mem, READ_VALUE)[0]

    def store32_many(self, pairs) -> None:
        """Several 32-bit stores in one CPU run (e.g. an SQ tail and a CQ head doorbell)."""
        n = len(pairs)
        if n == 0:
            return
        if n > BATCH_MAX:
            raise ValueError(f"at most {BATCH_MAX} stores per batch")
        mem = self._mem
        for i, (addr, val) in enumerate(pairs):
            _PAIR.pack_into(mem, BATCH_TABLE + 16 * i, addr, val & 0xFFFFFFFF)
        _U64.pack_into(mem, BATCH_COUNT, n)
        self._start(STUB_WRITE_MANY)

    def close(self) -> None:
        """Close the engine, then drop what ties this object to its callbacks (a cycle
        that would keep guest RAM until the next full garbage collection)."""
        self.uc = None
        self._callbacks = self._start = self._fast = self._ram = self._mem = None


