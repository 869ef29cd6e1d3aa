"""The gate's capability options: what the user declares their targets implement.

``--capabilities FILE`` (TOML or JSON, ``oracle.capabilities.load_file``: one declaration for
every ``module:function`` target, or ``[targets."name"]`` tables) and the flags ``--dtype``,
``--layout``, ``--padding`` (repeatable), ``--no-dilations``, ``--no-zero-size`` and
``--plain-arguments``, which declare for every ``module:function`` target and take precedence
over the file's catch-all declaration. A declaration given here replaces the callable's own
``conv3dt_capabilities`` attribute; without one, the attribute (read by the target's worker)
is used. The resolved declarations travel to the session as one JSON file
(``--conv3dt-capabilities``).
"""
from __future__ import annotations

import argparse
from typing import Any

from conv3dt.oracle.capabilities import (DTYPES, LAYOUTS, PADDINGS, Capabilities, CapabilityError,
                                         load_file)


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("capability declarations (docs/vendors.md)")
    g.add_argument("--capabilities", metavar="FILE", default=None,
                   help="TOML/JSON declaring what your module:function targets implement; Cases "
                   "outside are not given to them and paint nothing red")
    g.add_argument("--dtype", action="append", choices=DTYPES, default=None,
                   help="a dtype your module:function targets implement (repeatable)")
    g.add_argument("--layout", action="append", choices=LAYOUTS, default=None,
                   help="a data_format your module:function targets implement (repeatable)")
    g.add_argument("--padding", action="append", choices=PADDINGS, default=None,
                   help="a padding rule your module:function targets implement (repeatable)")
    g.add_argument("--no-dilations", action="store_true",
                   help="your module:function targets implement dilation 1 only")
    g.add_argument("--no-zero-size", action="store_true",
                   help="your module:function targets take no zero-size input or output")
    g.add_argument("--plain-arguments", action="store_true",
                   help="your module:function targets take only the v1 signature's plain spelling "
                   "(value/filter, output_shape a list, length-5 strides and dilations)")


def flag_mapping(args: argparse.Namespace) -> dict[str, Any]:
    """The declaration the flags make (empty when no flag is given)."""
    out: dict[str, Any] = {}
    for key, given in (("dtypes", args.dtype), ("layouts", args.layout), ("paddings", args.padding)):
        if given:
            out[key] = list(dict.fromkeys(given))
    for key, flag in (("dilations", args.no_dilations), ("zero_size", args.no_zero_size),
                      ("argument_forms", args.plain_arguments)):
        if flag:
            out[key] = False
    return out


def from_args(args: argparse.Namespace, targets: list[str]) -> dict[str, dict[str, Any]]:
    """``{target: {"declared": mapping, "source": text}}`` for the targets the user declared;
    ``CapabilityError`` (a usage error) naming what is wrong."""
    from conv3dt.oracle.targets import resolve

    modules = [t for t in targets if resolve(t).kind in ("module", "module-grad")]
    declared: dict[str, dict[str, Any]] = {}
    if args.capabilities:
        given = load_file(args.capabilities)
        unknown = sorted(set(given) - set(targets) - {"*"})
        if unknown:
            raise CapabilityError(f"{args.capabilities}: declares {unknown}, which are not among "
                                  f"the gate's targets {targets}")
        for name in targets:
            caps = given.get(name) or (given.get("*") if name in modules else None)
            if caps is not None:
                declared[name] = {"declared": caps.to_json(), "source": f"file {args.capabilities}"}
    flags = flag_mapping(args)
    if flags:
        if not modules:
            raise CapabilityError("--dtype/--layout/--padding/--no-dilations/--no-zero-size/"
                                  "--plain-arguments declare for module:function targets, and "
                                  "none is selected (--target mypkg.kernels:fn)")
        caps = Capabilities.from_mapping(flags, "command-line flags")
        for name in modules:
            declared[name] = {"declared": caps.to_json(), "source": "command-line flags"}
    return declared
