"""Annotate tasks of a Label Studio project through the official SDK, as an annotator would (tests only).

Runs with the Python of Label Studio's own environment (it has ``label-studio-sdk``), not svp-hf's:

    python ls_annotate.py URL API_KEY PROJECT PLAN.json

PLAN: {"round": R, "answers": {"POOL_INDEX": "CLASS" | "skip", ...}, "ground_truth": false}. Each listed task of
round R gets one annotation by the key's user: the chosen class, or a skip (a cancelled annotation); an existing
annotation of that user on the task is updated instead of a second one being added. Prints the number annotated.
"""

import json
import sys
from pathlib import Path

from label_studio_sdk import LabelStudio


def main(url: str, api_key: str, project: int, plan_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    client = LabelStudio(base_url=url, api_key=api_key)
    me = client.users.whoami().id
    answers = {int(k): v for k, v in plan["answers"].items()}
    done = 0
    for task in client.tasks.list(project=project, fields="all"):
        data = task.data or {}
        if data.get("svp_round") != plan["round"] or data.get("svp_pool_index") not in answers:
            continue
        answer = answers[data["svp_pool_index"]]
        skip = answer == "skip"
        result = [] if skip else [
            {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [answer]}}
        ]  # fmt: skip
        fields = {"result": result, "was_cancelled": skip, "ground_truth": bool(plan.get("ground_truth"))}
        mine = [a for a in client.annotations.list(id=task.id) if a.completed_by == me]
        if mine:
            client.annotations.update(id=mine[0].id, **fields)
        else:
            client.annotations.create(id=task.id, **fields)
        done += 1
    print(done)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
