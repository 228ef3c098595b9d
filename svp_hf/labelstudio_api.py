"""Active-learning rounds labeled in a running Label Studio server: ``svp-hf active-learn --oracle label-studio``.

`LabelStudioOracle` hands each query to one Label Studio project of the run (created on the first query, with a
labeling config generated from the pool's classes, and remembered in ``DIR/label_studio.json``: the server and the
project, never the API key) as tasks that carry ``svp_pool_index``, ``svp_round`` and the proxy's score, each with the
proxy's guess as a pre-annotation (model version ``svp-hf PROXY round R``; sort by prediction score in the Data Manager
to see the rows the proxy is least sure of first). The run then stops, as with the file oracle. Running the same
command again collects the round's annotations from the server, validates them with the rules of label files (the
annotators' vote: `svp_hf.labelstudio`), and commits the round; a round that people have not finished waits (or, with
``--accept-partial``, commits what is done and returns the rest to the pool).

Nothing is done twice: tasks of a round already in the project (a run killed after the import) are not imported again,
and a round commits once (the state is written last, atomically).

The API key comes from ``LABEL_STUDIO_API_KEY``: a legacy token (``Authorization: Token KEY``), or a personal access
token (a JWT refresh token, exchanged at ``/api/token/refresh`` for an access token). The client speaks Label Studio's
documented REST API with the standard library (five endpoints), so the oracle needs no extra package; the
``svp-hf[label-studio]`` extra installs the official SDK for scripts of your own.
"""

from __future__ import annotations

import base64
import io
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, LabelError
from .io import write_json_atomic
from .labelstudio import labeling_config, read_tasks, round_tasks
from .oracles import UNANSWERED, CollectedLabels, FileOracle, LabelsPending, check_label_rows

API_KEY_ENV = "LABEL_STUDIO_API_KEY"
LINK_FILE = "label_studio.json"


class LabelStudioClient:
    """The few calls of Label Studio's REST API the oracle needs: projects (find, create), task import, export."""

    def __init__(self, url: str, api_key: str, timeout: float = 60.0):
        parsed = urllib.parse.urlparse(url or "")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"--label-studio-url must be an http(s) URL such as http://localhost:8080, got {url!r}")
        if not api_key:
            raise ConfigError(
                f"the Label Studio API key is read from {API_KEY_ENV} (Account & Settings > Access Token in Label "
                "Studio): set it in the environment, never in a flag or a file of the run"
            )
        self.url, self.timeout = url.rstrip("/"), timeout
        self._key, self._header = api_key, None

    # -- the calls --------------------------------------------------------------------------------------------
    def whoami(self) -> dict:
        """The user of the API key: a cheap check that the server answers and accepts the key."""
        return self._call("GET", "/api/current-user/whoami")

    def find_project(self, title: str) -> dict | None:
        """The project titled exactly ``title`` (the oldest, if several), or None."""
        found, page = [], 1
        while True:
            reply = self._call("GET", "/api/projects", query={"title": title, "page": page, "page_size": 100})
            items = reply.get("results", []) if isinstance(reply, dict) else reply
            found += [p for p in items if isinstance(p, dict) and p.get("title") == title]
            if not (isinstance(reply, dict) and reply.get("next")):
                break
            page += 1
        return min(found, key=lambda p: p["id"]) if found else None

    def project(self, project_id: int) -> dict | None:
        try:
            return self._call("GET", f"/api/projects/{int(project_id)}")
        except _NotFound:
            return None

    def create_project(self, title: str, label_config: str, description: str = "") -> dict:
        body = {"title": title, "label_config": label_config, "description": description}
        return self._call("POST", "/api/projects", body=body)

    def import_tasks(self, project_id: int, tasks: list[dict]) -> int:
        reply = self._call("POST", f"/api/projects/{int(project_id)}/import", body=tasks)
        return int(reply.get("task_count", len(tasks))) if isinstance(reply, dict) else len(tasks)

    def tasks(self, project_id: int) -> list[dict]:
        """Every task of the project with its annotations (Label Studio's JSON export, unfinished tasks included)."""
        query = {"exportType": "JSON", "download_all_tasks": "true"}
        reply = self._call("GET", f"/api/projects/{int(project_id)}/export", query=query)
        if not isinstance(reply, list):
            raise LabelError(f"{self.url}: the export of project {project_id} is not a list of tasks")
        return reply

    # -- HTTP ------------------------------------------------------------------------------------------------
    def _auth(self) -> str:
        if self._header is None:
            if self._key.count(".") == 2:  # a personal access token: a JWT refresh token, traded for an access token
                reply = self._call("POST", "/api/token/refresh", body={"refresh": self._key}, auth=False)
                self._header = f"Bearer {reply['access']}"
            else:
                self._header = f"Token {self._key}"
        return self._header

    def _call(self, method: str, path: str, *, body: Any = None, query: dict | None = None, auth: bool = True):
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = self._auth()
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read().decode("utf-8")
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")[:300].strip()
            if err.code in (401, 403):
                raise ConfigError(
                    f"Label Studio at {self.url} refused the API key (HTTP {err.code} on {path}): set {API_KEY_ENV} "
                    "to a token of a user of that server (Account & Settings > Access Token)"
                ) from None
            if err.code == 404:
                raise _NotFound(path) from None
            failed = f"{method} {path} failed (HTTP {err.code}): {detail}"
            raise LabelError(f"Label Studio at {self.url}: {failed}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ConfigError(
                f"cannot reach Label Studio at {self.url} ({reason}): start it (label-studio start) or pass the URL "
                "it serves with --label-studio-url"
            ) from None
        try:
            return json.loads(text) if text.strip() else {}
        except json.JSONDecodeError:
            raise LabelError(f"Label Studio at {self.url}: {method} {path} did not answer JSON") from None


class _NotFound(Exception):
    pass


class LabelStudioOracle(FileOracle):
    """Labels each query in a Label Studio project (see the module docstring). It also writes the query to
    ``pending/`` as the file oracle does, so a round can still be answered with ``--labels FILE``."""

    name = "label-studio"
    collects_itself = True  # a rerun collects the pending round from the server, no --labels needed

    def __init__(self, pool, task, folder: Path, *, url: str | None = None, api_key: str | None = None):
        super().__init__(pool, task, folder)
        link = self._link()
        url = url or link.get("url")
        if not url:
            raise ConfigError("--oracle label-studio needs the server: --label-studio-url URL (http://localhost:8080)")
        self.client = LabelStudioClient(url, api_key if api_key is not None else os.environ.get(API_KEY_ENV, ""))
        self._project: int | None = None  # found (or created) once per run

    # -- the project of the run ---------------------------------------------------------------------------------
    def _link(self) -> dict[str, Any]:
        path = self.dir / LINK_FILE
        try:
            return json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            raise ConfigError(f"{path} is not readable JSON: remove it to link the run to a project again") from None

    def project_title(self) -> str:
        """One title per run folder: a rerun (or a run killed before it saved the link) finds its project again."""
        import hashlib

        digest = hashlib.sha256(str(self.dir.resolve()).encode()).hexdigest()[:8]
        return f"svp-hf {self.dir.name} ({digest})"

    def project_id(self) -> int:
        if self._project is None:
            self._project = self._find_or_create_project()
        return self._project

    def _find_or_create_project(self) -> int:
        link = self._link()
        if link.get("project") is not None and link.get("url") == self.client.url:
            if self.client.project(link["project"]) is None:
                raise ConfigError(
                    f"Label Studio project {link['project']} of this run is gone from {self.client.url}; its pending "
                    f"round cannot be collected there: answer it with --labels FILE (pending/), or remove "
                    f"{self.dir / LINK_FILE} to start a new project"
                )
            return int(link["project"])
        title = self.project_title()
        project = self.client.find_project(title)
        if project is None:
            modality = "image" if self.task.modality == "image" else "text"
            description = f"Active learning with svp-hf: {self.dir.resolve()}"
            project = self.client.create_project(title, labeling_config(self.task.label_names, modality), description)
        link = {"url": self.client.url, "project": int(project["id"]), "title": title}
        write_json_atomic(self.dir / LINK_FILE, link)
        return int(project["id"])

    def project_url(self, project_id: int) -> str:
        return f"{self.client.url}/projects/{project_id}/data"

    # -- asking and collecting --------------------------------------------------------------------------------
    def prepare(self) -> None:
        self.client.whoami()  # an unreachable server or a refused key fails before the run writes anything

    def ask(self, query: dict[str, Any]) -> None:
        super().ask(query)  # pending/ files too: a fallback, and what the record points at
        r, indices = query["round"], np.asarray(query["indices"])
        project = self.project_id()
        already = {
            int(t["data"]["svp_pool_index"]) for t in self._round_tasks(project, r) if "svp_pool_index" in t["data"]
        }
        todo = np.array([i for i in indices.tolist() if i not in already], dtype=np.int64)
        if todo.size == 0:  # imported by a run killed before it recorded the round
            return None
        keep = np.isin(indices, todo)
        probs = query.get("probs")
        tasks = round_tasks(
            self._shown(todo),
            "image" if self.task.modality == "image" else "text",
            r,
            todo,
            query["scores"],
            None if probs is None else np.asarray(probs)[keep],
            self.task.label_names,
            query.get("proxy") or "random",
        )
        self.client.import_tasks(project, tasks)
        return None

    def _round_tasks(self, project: int, round_index: int) -> list[dict]:
        """The project's tasks of one round (the export holds every round's)."""
        return [
            t
            for t in self.client.tasks(project)
            if isinstance(t.get("data"), dict) and t["data"].get("svp_round") == round_index
        ]

    def _shown(self, indices: np.ndarray) -> list[str]:
        rows = self.pool.select(indices)
        if self.task.modality != "image":
            return [t or "" for t in rows[self.task.text_column]]
        shown = []  # inline PNGs: no file serving to set up on the server
        for image in rows[self.task.image_column]:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            shown.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
        return shown

    def collect(
        self, answer: Any, round_index: int, indices: np.ndarray, *, accept_partial: bool = False
    ) -> CollectedLabels:
        if answer is not None:  # a label file or an export, as with the file oracle
            return super().collect(answer, round_index, indices, accept_partial=accept_partial)
        project = self.project_id()
        source = f"Label Studio project {project} ({self.project_url(project)})"
        rows, notes = read_tasks(self._round_tasks(project, round_index), source, self.task.label_names)
        answered = sum(1 for _, row in rows if row["label"] is not UNANSWERED)
        if answered < len(indices) and not accept_partial:
            raise LabelsPending(
                f"round {round_index}: {answered} of {len(indices)} tasks annotated in {source}; rerun when they are "
                "done, or with --accept-partial to commit the annotated ones and return the rest to the pool"
            )
        labels = check_label_rows(rows, round_index, indices, self.task.label_names, source=source,
                                  accept_partial=accept_partial)  # fmt: skip
        notes["label_studio"].update(project=project, url=self.client.url)
        return CollectedLabels(labels, notes)
