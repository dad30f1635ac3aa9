"""Driver for the autoscaling test (its own process: it runs a multi-node Ray of its own).

A head without CPUs plus three 1-CPU raylets; the real `hf` engine on an actor pool of
concurrency (1, 3). Every output row records the actor and node that produced it.
"""

import json
import sys
import time

import ray
from ray.cluster_utils import Cluster

import mathgpt.engines.hf as hf
from mathgpt.config import EngineConfig, SamplingConfig
from mathgpt.engines import generate, make_request
from mathgpt.engines.collect import collect_exactly_once
from mathgpt.models import resolve_model


class WhereGenerator(hf.HFGenerator):
    """The real engine, tagging each output row with the actor and node that ran it."""

    def __call__(self, batch):
        out = super().__call__(batch)
        ctx = ray.get_runtime_context()
        n = len(out["request_id"])
        out["actor_id"] = [ctx.get_actor_id()] * n
        out["node_id"] = [ctx.get_node_id()] * n
        return out


def main(n_requests: int) -> None:
    hf.HFGenerator = WhereGenerator  # `generate` looks the class up at call time
    path = resolve_model("builtin:tiny")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        for _ in range(3):
            cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, logging_level="WARNING")
        cluster.wait_for_nodes()
        reqs = [make_request(f"r{i}", SamplingConfig(max_tokens=32, temperature=0.0), prompt=f"What is {i} + 1?")
                for i in range(n_requests)]
        start = time.time()
        rows = collect_exactly_once(reqs, lambda ds: generate(ds, EngineConfig(batch_size=4, concurrency=(1, 3)), path))
        print(json.dumps({"rows": len(rows), "ids": len({r["request_id"] for r in rows}),
                          "actors": len({r["actor_id"] for r in rows}), "nodes": len({r["node_id"] for r in rows}),
                          "seconds": round(time.time() - start, 1)}))
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]))
