"""``conv3dt targets``: list the targets with availability, versions and descriptions.

By default availability is *checked*: each target's worker is started once (the TF paths
share two workers, so this takes a few seconds) and asked for its versions. ``--quick``
only checks that the packages are installed. ``--json`` prints machine-readable output.
Extra ``module:function`` names given as arguments are checked too.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from conv3dt.oracle.targets import (KNOWN_TARGETS, default_targets, framework_installed,
                                    jax_installed, resolve, tf_installed)


def _quick(name: str) -> dict[str, Any]:
    spec = resolve(name)
    if spec.kind == "tf":
        ok, why = tf_installed(), "tensorflow is not installed"
    elif spec.kind == "jax":
        ok, why = jax_installed(), "jax is not installed (pip install 'conv3dt[jax]')"
    elif spec.kind in ("onnxruntime", "openvino"):
        ok, why = framework_installed(spec.kind), (f"{spec.kind} is not installed (pip install "
                                                   f"'conv3dt[{spec.kind}]')")
    else:
        ok, why = True, ""
    return {"available": ok, **({} if ok else {"reason": why})}


def _checked(name: str, timeout: float, stack: contextlib.ExitStack) -> dict[str, Any]:
    from conv3dt.oracle.pool import TargetPool, TargetUnavailable

    quick = _quick(name)
    if not quick["available"]:
        return quick
    try:  # pools stay open until the end, so targets sharing a worker start it once
        info = stack.enter_context(TargetPool(name, timeout=timeout)).info()
    except TargetUnavailable as exc:
        return {"available": False, "reason": str(exc)[-500:]}
    worker = info.get("worker", {})
    versions = {k: worker[k] for k in ("tensorflow", "jax", "onnxruntime", "openvino", "python",
                                       "numpy") if k in worker}
    if not versions:
        env = info["environment"]
        versions = {"python": env["python"], "numpy": env["packages"]["numpy"]}
    out: dict[str, Any] = {"available": True, "versions": versions}
    if "onednn" in info:
        out["onednn"] = info["onednn"]
    if "xla_available" in worker:
        out["xla_available"] = worker["xla_available"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="conv3dt targets", description=__doc__.splitlines()[0])
    parser.add_argument("extra", nargs="*", help="module:function targets to check as well")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--quick", action="store_true", help="do not start workers")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    names = list(KNOWN_TARGETS) + list(args.extra)
    defaults = set(default_targets())
    with contextlib.ExitStack() as stack:
        # worker environments start in parallel (each TF import takes seconds)
        with ThreadPoolExecutor(3) as ex:
            rows = list(ex.map(lambda n: _row(n, args, defaults, stack), names))
        if any(row is None for row in rows):
            return 2
    return _print(rows, args.json)


def _row(name: str, args: argparse.Namespace, defaults: set, stack: contextlib.ExitStack):
    try:
        spec = resolve(name)
    except ValueError as exc:
        print(f"conv3dt targets: {exc}", file=sys.stderr)
        return None
    status = _quick(name) if args.quick else _checked(name, args.timeout, stack)
    return {"name": name, "kind": spec.kind, "default": name in defaults,
            "description": spec.description, **status}


def _print(rows: list[dict], as_json: bool) -> int:
    if as_json:
        print(json.dumps({"targets": rows}, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        mark = "yes" if r["available"] else "no "
        versions = ", ".join(f"{k} {v}" for k, v in r.get("versions", {}).items())
        extra = ""
        if "onednn" in r:
            extra += f"; oneDNN {'on' if r['onednn']['enabled'] else 'off'}"
        if "xla_available" in r:
            extra += f"; XLA {'yes' if r['xla_available'] else 'no'}"
        default = "*" if r["default"] else " "
        print(f"{default} {r['name'].ljust(width)}  {mark}  {versions}{extra}")
        print(f"  {' ' * width}       {r['description']}")
        if not r["available"]:
            print(f"  {' ' * width}       unavailable: {r.get('reason', '')}")
    print("\n* = in default_targets()")
    return 0


if __name__ == "__main__":
    sys.exit(main())
