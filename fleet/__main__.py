"""fleet/run ACTION [options]: day-2 operations over the grid_engine_nodes of the Ansible inventory."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from fleet import client
from fleet.check import check
from fleet.inventory import GROUP, load_nodes
from fleet.verdict import table

ROOT = Path(__file__).resolve().parent.parent


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fleet/run", description=__doc__)
    parser.add_argument("action", choices=["check", "upgrade", "rollback", "drain", "undrain"])
    parser.add_argument("-i", "--inventory", action="append",
                        help="Ansible inventory (repeatable; default inventories/local)")
    parser.add_argument("--vault-password-file",
                        help="for an inventory with vaulted variables (inventories/production)")
    parser.add_argument("--group", default=GROUP, help=f"inventory group of the nodes (default {GROUP})")
    parser.add_argument("--limit", action="append", help="only this node (repeatable)")
    parser.add_argument("--wheel", type=Path, help="upgrade: the jobmon wheel to install")
    parser.add_argument("--batch-size", type=int, default=10,
                        help="upgrade/rollback: nodes per batch (default 10)")
    parser.add_argument("--queue", default="*",
                        help="drain/undrain: queue whose instance on the node is disabled (default: all)")
    parser.add_argument("--admin-host",
                        help="drain/undrain: run qmod on this inventory host (a Grid Engine admin host) "
                             "instead of on each node")
    parser.add_argument("--parallel", type=int, default=20, help="nodes worked on at once (default 20)")
    parser.add_argument("-v", "--verbose", action="store_true", help="pyinfra's own progress too")
    args = parser.parse_args(argv)
    if args.action == "upgrade" and (args.wheel is None or not args.wheel.is_file()):
        parser.error("upgrade needs --wheel PATH to an existing jobmon-*.whl")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    inventories = args.inventory or [str(ROOT / "inventories" / "local")]
    nodes = load_nodes(inventories, args.group, args.limit, args.vault_password_file)
    if not nodes:
        print(f"fleet: no hosts in group {args.group}", file=sys.stderr)
        return 2
    # pyinfra logs each step at INFO; by default only its errors (a node's failing output) show above
    # the summary.
    logging.basicConfig(format="%(message)s")
    logging.getLogger("pyinfra").setLevel(logging.INFO if args.verbose else logging.ERROR)
    started = time.monotonic()
    if args.action == "check":
        verdicts = check(nodes, args.parallel)
        print(table(verdicts))
        ok = all(v.ok for v in verdicts)
    elif args.action == "upgrade":
        ok = client.in_batches(nodes, args.batch_size, client.upgrade_adder(args.wheel.resolve()),
                               args.parallel, print)
    elif args.action == "rollback":
        ok = client.in_batches(
            nodes, args.batch_size,
            client.shell_adder(lambda n: client.rollback_script(n.setting("grid_engine_client_venv")),
                               "Roll back the client venv"),
            args.parallel, print)
    else:
        admin = None
        if args.admin_host:
            (admin,) = load_nodes(inventories, "all", [args.admin_host], args.vault_password_file)
        ok = client.drain(nodes, admin, args.action == "undrain", args.queue, args.parallel, print)
    print(f"{args.action}: {'ok' if ok else 'FAILED'} on {len(nodes)} node(s) in "
          f"{time.monotonic() - started:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
