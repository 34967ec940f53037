"""Which stacks `ox bench` mounts: any stack mode of oxhost.stack (pblk, appnvm,
FILE.py:Class@host, FILE.py:Class@device, with +2.0 / +zns for a host-side stack), as
`ox compare --stack` takes them -- and what each becomes on the benchmark's side: the
`ox mount` / `ox up` options that serve it, a directory name and its figures' key prefix."""
from ..stack import mode_slug as slug
from ..stack import parse_mode

DEFAULT = ("pblk", "appnvm")


def mount_args(mode: str) -> list[str]:
    """The `ox mount` / `ox up` options that serve the stack `mode`."""
    m = parse_mode(mode)
    args = ["--ftl", m.ftl, "--side", m.side] if m.ftl is not None else ["--mode", m.kind]
    return args + (["--spec", m.spec] if m.spec != "1.2" else [])


def prefix(mode: str) -> str:
    """The prefix of a stack's figures in the JSON: none for pblk (the reference volume),
    `appnvm_` for AppNVM, `<slug>_` for the others."""
    return "" if mode == "pblk" else f"{slug(mode)}_"
