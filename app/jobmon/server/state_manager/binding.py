"""Binding a DAG and its tasks, set-based and chunked.

Each request carries up to 10,000 nodes or tasks (50,000 edges). Existing rows are found with one SELECT
per ~1,000 keys, missing ones inserted with one executemany insert-or-ignore, and their ids re-selected:
the number of round trips grows with the number of chunks, never with the number of rows, and two clients
binding the same thing at once both succeed with the same ids. Rows are plain tuples and dicts on the hot
path: no ORM object is built per node or task.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Annotated, Any, Literal, get_args

from msgspec import Meta, Struct
from sqlalchemy import bindparam, func, insert, literal, select, update

from jobmon.core.resources import ComputeResources, QueueLimits, validated
from jobmon.core.states import ACTIVE_WORKFLOW_RUN_STATES, TaskStatus
from jobmon.server.context import rw_sessions
from jobmon.server.db import db_now, transaction
from jobmon.server.errors import Conflict, InvalidInput
from jobmon.server.models import (
    Dag,
    Edge,
    Node,
    NodeArg,
    Queue,
    Task,
    TaskArg,
    TaskAttribute,
    TaskResources,
    TaskTemplateVersion,
    Workflow,
    WorkflowRun,
)
from jobmon.server.state_manager import blueprint
from jobmon.server.state_manager.common import (
    chunked,
    insert_ignore,
    insert_ignore_returning,
    insert_rows,
    latest,
    load,
    point_at_newest_resources,
    require_ids,
    table,
    write_route,
)
from jobmon.server.state_manager.inputs import (
    ArgMap,
    Hash,
    Id,
    Name,
    NonEmptyName,
    Positive,
    Text,
    check_text,
    store_as_text,
)
from jobmon.server.validation import accepts

MAX_NODES = 10_000
MAX_EDGES = 50_000
MAX_TASKS = 10_000
# A resource request shared by at least this many tasks of a request is written set-based (see
# _add_resources); rarer ones row by row.
SHARED_REQUEST = 20
_node = table(Node)
_node_arg = table(NodeArg)
_edge = table(Edge)
_task = table(Task)
_task_arg = table(TaskArg)
_task_attr = table(TaskAttribute)
_resources = table(TaskResources)

NodeKey = tuple[int, str]


# --- nodes -------------------------------------------------------------------------------------------


class NodeSpec(Struct):
    task_template_version_id: Id
    node_args_hash: Hash
    node_args: ArgMap = {}

    def __post_init__(self) -> None:
        self.node_args_hash = self.node_args_hash.lower()
        store_as_text(self.node_args, "node_args")


class NodesBody(Struct):
    nodes: Annotated[list[NodeSpec], Meta(max_length=MAX_NODES)]


class NodesAnswer(Struct):
    node_ids: Annotated[list[int], Meta(description="in the request's order")]


@blueprint.post("/nodes")
@accepts(NodesBody, answers=NodesAnswer)
@write_route
def bind_nodes(body: NodesBody) -> NodesAnswer:
    """Bind nodes: find or create each node, answering node ids in the request's order.

    A node is identified by its task template version and the hash of its node args; its args are stored
    when it is created.
    """
    keys: list[NodeKey] = []
    node_args: dict[NodeKey, ArgMap] = {}
    for node in body.nodes:
        key = (node.task_template_version_id, node.node_args_hash)
        keys.append(key)
        node_args.setdefault(key, node.node_args)

    with transaction(rw_sessions()) as session:
        ids = _find_nodes(session, node_args)
        # Key order: concurrent binds then take row locks in the same order and cannot deadlock.
        new = sorted(k for k in node_args if k not in ids)
        if new:
            require_ids(session, TaskTemplateVersion.id, {k[0] for k in new}, "task template version")
            for row in insert_ignore_returning(session, _node, [
                {"task_template_version_id": version, "node_args_hash": digest} for version, digest in new
            ], _node.c.id, _node.c.task_template_version_id, _node.c.node_args_hash):
                ids[(row.task_template_version_id, row.node_args_hash)] = row.id
            lost = [k for k in new if k not in ids]
            if lost:
                # A concurrent identical bind inserted these first: take its rows.
                ids.update(_find_nodes(session, lost, lock=True))
            insert_ignore(session, _node_arg, [
                {"node_id": ids[k], "name": name, "value": value}
                for k in new
                for name, value in node_args[k].items()
            ])
    return NodesAnswer([ids[k] for k in keys])


def _find_nodes(session: Any, keys: Iterable[NodeKey], lock: bool = False) -> dict[NodeKey, int]:
    # Grouped by template version so each SELECT is an index range on (version, hash IN ...).
    by_version: dict[int, list[str]] = defaultdict(list)
    for version, digest in keys:
        by_version[version].append(digest)
    found: dict[NodeKey, int] = {}
    for version, digests in by_version.items():
        for chunk in chunked(digests):
            stmt = select(_node.c.id, _node.c.node_args_hash).where(
                _node.c.task_template_version_id == version, _node.c.node_args_hash.in_(chunk)
            )
            rows = session.execute(latest(stmt) if lock else stmt)
            for node_id, digest in rows:
                found[(version, digest)] = node_id
    return found


# --- DAG and edges -----------------------------------------------------------------------------------


class DagBody(Struct):
    dag_hash: Hash

    def __post_init__(self) -> None:
        self.dag_hash = self.dag_hash.lower()


class DagAnswer(Struct):
    dag_id: int
    created: Annotated[bool, Meta(description="whether this call made it")]


@blueprint.post("/dag")
@accepts(DagBody, answers=DagAnswer)
@write_route
def bind_dag(body: DagBody) -> DagAnswer:
    """Get or create a DAG by its hash; ``created`` says whether this call made it."""
    digest = body.dag_hash
    with transaction(rw_sessions()) as session:
        created = insert_ignore(session, table(Dag), [{"hash": digest}]) == 1
        dag_id = session.execute(latest(select(Dag.id).where(Dag.hash == digest))).scalar_one()
    return DagAnswer(dag_id, created)


class EdgesBody(Struct):
    edges: Annotated[list[tuple[Id, Id]], Meta(
        max_length=MAX_EDGES, description="[upstream_node_id, downstream_node_id] pairs")]


class EdgesAnswer(Struct):
    inserted: Annotated[int, Meta(description="edges new to the DAG")]


@blueprint.post("/dag/<int:dag_id>/edges")
@accepts(EdgesBody, answers=EdgesAnswer)
@write_route
def bind_edges(body: EdgesBody, dag_id: int) -> EdgesAnswer:
    """Add upstream -> downstream edges to a DAG; edges it already has are skipped (idempotent)."""
    pairs = dict.fromkeys(body.edges)  # ordered and unique
    for i, (up, down) in enumerate(body.edges):
        if up == down:
            raise InvalidInput(f"edges[{i}]: a node cannot depend on itself")

    with transaction(rw_sessions()) as session:
        load(session, Dag, dag_id, "dag")
        existing: set[tuple[int, int]] = set()
        for chunk in chunked(sorted({down for _, down in pairs})):
            rows = session.execute(
                select(_edge.c.upstream_node_id, _edge.c.downstream_node_id).where(
                    _edge.c.dag_id == dag_id, _edge.c.downstream_node_id.in_(chunk)
                )
            )
            existing.update((up, down) for up, down in rows)
        new = sorted(p for p in pairs if p not in existing)  # key order, as for nodes
        inserted = 0
        if new:
            # Checked here because MariaDB's INSERT IGNORE would silently drop rows with a bad foreign key.
            require_ids(session, Node.id, {n for p in new for n in p}, "node")
            inserted = insert_ignore(session, _edge, [
                {"dag_id": dag_id, "upstream_node_id": up, "downstream_node_id": down} for up, down in new
            ])
    return EdgesAnswer(inserted)


# --- tasks -------------------------------------------------------------------------------------------

class Resources(Struct, frozen=True):
    """What a task asks its queue for (frozen: tasks of a request mostly share one, found by hash)."""

    queue: NonEmptyName
    num_cores: Positive
    memory_mb: Positive
    runtime_s: Positive

    def compute(self) -> ComputeResources:
        return ComputeResources(self.queue, self.num_cores, self.memory_mb, self.runtime_s)


class TaskSpec(Struct):
    node_id: Id
    task_args_hash: Hash
    name: Name
    command: Annotated[Text, Meta(min_length=1)]
    resources: Resources
    max_attempts: Annotated[int, Meta(ge=1, le=1000)] = 3
    task_args: ArgMap = {}
    task_attributes: ArgMap = {}
    resource_scales: Annotated[dict[str, Annotated[float, Meta(ge=0, le=100)]], Meta(
        description="growth after a resource error, e.g. {\"memory\": 0.5} asks x1.5 next time")] = {}

    def __post_init__(self) -> None:
        self.task_args_hash = self.task_args_hash.lower()
        check_text(self.command, "command")
        store_as_text(self.task_args, "task_args")
        store_as_text(self.task_attributes, "task_attributes")


class TasksBody(Struct):
    workflow_run_id: Id
    tasks: Annotated[list[TaskSpec], Meta(max_length=MAX_TASKS)]


class BoundTask(Struct):
    node_id: int
    task_id: int
    status: str


Cappable = Literal["num_cores", "memory_mb", "runtime_s"]


class CappedResource(Struct):
    """A task asked its queue for more than the queue's limit allows: it will run with ``capped_to``."""

    node_id: int
    task_id: int
    queue: str
    resource: Cappable
    requested: int
    capped_to: int


class TasksAnswer(Struct):
    tasks: Annotated[list[BoundTask], Meta(description="in the request's order")]
    capped: Annotated[list[CappedResource], Meta(
        description="each value of a task's request above its queue's limit (empty when none)")]


# As asked, and as the queue can run it.
_Checked = tuple[ComputeResources, ComputeResources]
_CAPPABLE: tuple[Cappable, ...] = get_args(Cappable)


def _scales_text(spec: TaskSpec) -> str:
    return json.dumps(spec.resource_scales, sort_keys=True) if spec.resource_scales else "{}"


@blueprint.post("/workflow/<int:workflow_id>/tasks")
@accepts(TasksBody, answers=TasksAnswer)
@write_route
def bind_tasks(body: TasksBody, workflow_id: int) -> TasksAnswer:
    """Bind tasks of a workflow: create new ones in G, update existing ones, answer ids and statuses.

    New tasks get an O (as requested) and a V (capped at the queue's limits) task_resources row. Existing
    tasks keep their id and status; a changed command, name, max_attempts or scale is updated, and a
    request that differs from the task's last O row gets new O and V rows (an unchanged one keeps the
    task's current, possibly adjusted, resources). ``capped`` lists every value of a request the queue's
    limits cap, so the client can warn.
    """
    run_id = body.workflow_run_id
    specs: dict[int, TaskSpec] = {}
    for i, spec in enumerate(body.tasks):
        if spec.node_id in specs:
            raise InvalidInput(f"tasks[{i}]: node {spec.node_id} appears twice in this request")
        specs[spec.node_id] = spec

    with transaction(rw_sessions()) as session:
        load(session, Workflow, workflow_id, "workflow")
        run = load(session, WorkflowRun, run_id, "workflow run")
        if run.workflow_id != workflow_id:
            raise InvalidInput(f"workflow run {run_id} belongs to workflow {run.workflow_id}")
        if run.status not in ACTIVE_WORKFLOW_RUN_STATES:
            raise Conflict(f"workflow run {run_id} is in status {run.status}: it can no longer bind tasks")
        limits = {
            q.name: QueueLimits(q.name, q.max_cores, q.max_memory_mb, q.max_runtime_s)
            for q in session.execute(select(Queue)).scalars()
        }
        checked: dict[Resources, _Checked] = {}
        for spec in specs.values():
            if spec.resources not in checked:
                queue = limits.get(spec.resources.queue)
                if queue is None:
                    raise InvalidInput(
                        f"task for node {spec.node_id}: unknown queue '{spec.resources.queue}'"
                        f" (known: {', '.join(sorted(limits))})"
                    )
                requested = spec.resources.compute()
                checked[spec.resources] = (requested, validated(requested, queue))
        now = db_now(session)
        found = _existing_tasks(session, workflow_id, list(specs))
        last_requested = _last_requested(session, [row.id for row in found.values()])
        ids: dict[int, int] = {}
        status: dict[int, str] = {}
        changed: list[dict[str, Any]] = []
        needs_resources: list[TaskSpec] = []
        for node_id, row in found.items():
            spec = specs[node_id]
            ids[node_id] = row.id
            status[node_id] = row.status
            scales = _scales_text(spec)
            if (row.name, row.command, row.max_attempts, row.resource_scales, row.task_args_hash) != (
                spec.name, spec.command, spec.max_attempts, scales, spec.task_args_hash
            ):
                changed.append({
                    "tid": row.id, "name": spec.name, "command": spec.command,
                    "max_attempts": spec.max_attempts, "resource_scales": scales,
                    "task_args_hash": spec.task_args_hash,
                })
            # An unchanged request keeps the task's current row, which may be adjusted (A) by earlier
            # resource errors: a resumed workflow does not start again from a request that was too small.
            if last_requested.get(row.id) != checked[spec.resources][0]:
                needs_resources.append(spec)

        new = [specs[n] for n in sorted(specs) if n not in found]  # key order, as for nodes
        if new:
            require_ids(session, Node.id, [s.node_id for s in new], "node")
            inserted = insert_ignore_returning(session, _task, [
                {
                    "node_id": s.node_id, "task_args_hash": s.task_args_hash, "name": s.name,
                    "command": s.command, "max_attempts": s.max_attempts, "resource_scales": _scales_text(s),
                }
                for s in new
            ], _task.c.id, _task.c.node_id, constants={
                "workflow_id": workflow_id, "num_attempts": 0, "status": TaskStatus.REGISTERED.value,
                "status_date": now,
            })
            for row in inserted:
                ids[row.node_id] = row.id
                status[row.node_id] = TaskStatus.REGISTERED.value
            lost = [s.node_id for s in new if s.node_id not in ids]
            if lost:
                # A concurrent identical bind inserted these first: take its rows.
                for node_id, row in _existing_tasks(session, workflow_id, lost, lock=True).items():
                    ids[node_id] = row.id
                    status[node_id] = row.status
            insert_ignore(session, _task_arg, [
                {"task_id": ids[s.node_id], "name": k, "value": v}
                for s in new
                for k, v in s.task_args.items()
            ])
            insert_ignore(session, _task_attr, [
                {"task_id": ids[s.node_id], "name": k, "value": v}
                for s in new
                for k, v in s.task_attributes.items()
            ])
            needs_resources.extend(new)

        if changed:
            session.execute(
                update(_task)
                .where(_task.c.id == bindparam("tid"))
                .values(
                    name=bindparam("name"), command=bindparam("command"),
                    max_attempts=bindparam("max_attempts"), resource_scales=bindparam("resource_scales"),
                    task_args_hash=bindparam("task_args_hash"),
                ),
                changed,
            )
        if needs_resources:
            _add_resources(session, [(ids[s.node_id], *checked[s.resources]) for s in needs_resources])

    return TasksAnswer(tasks=[BoundTask(node_id, ids[node_id], status[node_id]) for node_id in specs],
                       capped=_capped(specs, ids, checked))


def _capped(specs: dict[int, TaskSpec], ids: dict[int, int],
            checked: dict[Resources, _Checked]) -> list[CappedResource]:
    out: list[CappedResource] = []
    for node_id, spec in specs.items():
        requested, valid = checked[spec.resources]
        if requested == valid:
            continue
        out += [
            CappedResource(node_id, ids[node_id], requested.queue, name, getattr(requested, name),
                           getattr(valid, name))
            for name in _CAPPABLE if getattr(requested, name) != getattr(valid, name)
        ]
    return out


def _existing_tasks(
    session: Any, workflow_id: int, node_ids: list[int], lock: bool = False
) -> dict[int, Any]:
    """The workflow's tasks on these nodes, keyed by node id."""
    found: dict[int, Any] = {}
    for chunk in chunked(node_ids):
        stmt = select(
            _task.c.id, _task.c.node_id, _task.c.status, _task.c.name, _task.c.command,
            _task.c.max_attempts, _task.c.resource_scales, _task.c.task_args_hash,
        ).where(_task.c.workflow_id == workflow_id, _task.c.node_id.in_(chunk))
        for row in session.execute(latest(stmt) if lock else stmt):
            found[row.node_id] = row
    return found


def _last_requested(session: Any, task_ids: list[int]) -> dict[int, ComputeResources]:
    """What each task last asked for: its newest O row."""
    res = _resources
    out: dict[int, ComputeResources] = {}
    for chunk in chunked(task_ids):
        newest = (
            select(func.max(res.c.id))
            .where(res.c.task_id.in_(chunk), res.c.resource_type == "O")
            .group_by(res.c.task_id)
        )
        for task_id, queue, cores, memory, runtime in session.execute(
            select(res.c.task_id, res.c.queue, res.c.num_cores, res.c.memory_mb, res.c.runtime_s)
            .where(res.c.id.in_(newest))
        ):
            out[task_id] = ComputeResources(queue, cores, memory, runtime)
    return out


def _add_resources(session: Any, items: list[tuple[int, ComputeResources, ComputeResources]]) -> None:
    """An O and a V row per task; the task then points at its V row.

    Tasks bound together usually ask for the same resources. Each request shared by many tasks is written
    with ``INSERT INTO task_resources ... SELECT task.id, <the request> FROM task WHERE id IN (...)``, so
    only task ids travel and no per-row parameters are built; the few others go in one executemany.
    """
    groups: dict[tuple[ComputeResources, ComputeResources], list[int]] = defaultdict(list)
    for task_id, requested, valid in items:
        groups[(requested, valid)].append(task_id)
    rows: list[dict[str, Any]] = []
    for (requested, valid), task_ids in groups.items():
        pairs = (("O", requested), ("V", valid))
        if len(task_ids) < SHARED_REQUEST:
            rows += [{
                "task_id": task_id, "resource_type": kind, "queue": r.queue, "num_cores": r.num_cores,
                "memory_mb": r.memory_mb, "runtime_s": r.runtime_s,
            } for task_id in task_ids for kind, r in pairs]
            continue
        for chunk in chunked(task_ids):
            for kind, r in pairs:
                session.execute(insert(_resources).from_select(
                    ["task_id", "resource_type", "queue", "num_cores", "memory_mb", "runtime_s"],
                    select(_task.c.id, literal(kind), literal(r.queue), literal(r.num_cores),
                           literal(r.memory_mb), literal(r.runtime_s))
                    .where(_task.c.id.in_(chunk)),
                ))
    insert_rows(session, _resources, rows)
    point_at_newest_resources(session, (task_id for task_id, _, _ in items), "V")
