"""Child process that runs math-verify for the grader: one JSON request per line on stdin.

Running here, in its own main thread, math-verify's signal-based timeouts work; and the
parent can kill this process outright when a check outlives its bound, even inside C code.
"""

from __future__ import annotations

import json
import sys


def _wrap(text: str) -> str:
    return text if "$" in text or "\\boxed" in text or "\\(" in text else f"${text}$"


def main() -> None:
    """Serve equivalence checks until stdin closes."""
    from math_verify import parse, verify

    timeout = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    gold_cache: dict[str, object] = {}
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        try:
            gold = gold_cache.get(req["r"])
            if gold is None:
                gold = parse(_wrap(req["r"]), parsing_timeout=timeout)
                if len(gold_cache) > 10000:
                    gold_cache.clear()
                gold_cache[req["r"]] = gold
            pred = parse(_wrap(req["p"]), parsing_timeout=timeout)
            ok = bool(gold) and bool(pred) and bool(verify(gold, pred, timeout_seconds=timeout))
            reply = {"ok": ok}
        except Exception as err:  # noqa: BLE001 - any failure of the checker is a 'not equivalent' verdict
            reply = {"ok": False, "err": f"{type(err).__name__}: {err}"[:200]}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
