"""Initial schema, and the default queues whose limits cap adjusted resources.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 05:07:37.757615
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_date",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dag")),
        sa.UniqueConstraint("hash", name=op.f("uq_dag_hash")),
    )
    op.create_table(
        "queue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("max_cores", sa.Integer(), nullable=False),
        sa.Column("max_memory_mb", sa.Integer(), nullable=False),
        sa.Column("max_runtime_s", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue")),
        sa.UniqueConstraint("name", name=op.f("uq_queue_name")),
    )
    op.create_table(
        "tool",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "created_date",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool")),
        sa.UniqueConstraint("name", name=op.f("uq_tool_name")),
    )
    op.create_table(
        "tool_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tool_id", sa.Integer(), nullable=False),
        sa.Column(
            "created_date",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["tool_id"], ["tool.id"], name=op.f("fk_tool_version_tool_id_tool")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_version")),
    )
    with op.batch_alter_table("tool_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tool_version_tool_id"), ["tool_id"], unique=False)

    op.create_table(
        "task_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tool_version_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["tool_version_id"],
            ["tool_version.id"],
            name=op.f("fk_task_template_tool_version_id_tool_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_template")),
        sa.UniqueConstraint("tool_version_id", "name", name=op.f("uq_task_template_tool_version_id_name")),
    )
    op.create_table(
        "workflow",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tool_version_id", sa.Integer(), nullable=False),
        sa.Column("dag_id", sa.Integer(), nullable=False),
        sa.Column("workflow_args_hash", sa.String(length=64), nullable=False),
        sa.Column("task_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("max_concurrently_running", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=1), nullable=False),
        sa.Column(
            "status_date",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "created_date",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["dag_id"], ["dag.id"], name=op.f("fk_workflow_dag_id_dag")),
        sa.ForeignKeyConstraint(
            ["tool_version_id"], ["tool_version.id"], name=op.f("fk_workflow_tool_version_id_tool_version")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow")),
        sa.UniqueConstraint(
            "tool_version_id", "dag_id", "workflow_args_hash", "task_hash", name="uq_workflow_identity"
        ),
    )
    with op.batch_alter_table("workflow", schema=None) as batch_op:
        batch_op.create_index("ix_workflow_status", ["status"], unique=False)

    op.create_table(
        "task_template_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_template_id", sa.Integer(), nullable=False),
        sa.Column("template_hash", sa.String(length=64), nullable=False),
        sa.Column("command_template", sa.Text(), nullable=False),
        sa.Column("node_args", sa.Text(), nullable=False),
        sa.Column("task_args", sa.Text(), nullable=False),
        sa.Column("op_args", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_template_id"],
            ["task_template.id"],
            name=op.f("fk_task_template_version_task_template_id_task_template"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_template_version")),
        sa.UniqueConstraint(
            "task_template_id",
            "template_hash",
            name=op.f("uq_task_template_version_task_template_id_template_hash"),
        ),
    )
    op.create_table(
        "workflow_arg",
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"], ["workflow.id"], name=op.f("fk_workflow_arg_workflow_id_workflow")
        ),
        sa.PrimaryKeyConstraint("workflow_id", "name", name=op.f("pk_workflow_arg")),
    )
    op.create_table(
        "workflow_attribute",
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"], ["workflow.id"], name=op.f("fk_workflow_attribute_workflow_id_workflow")
        ),
        sa.PrimaryKeyConstraint("workflow_id", "name", name=op.f("pk_workflow_attribute")),
    )
    op.create_table(
        "workflow_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=150), nullable=False),
        sa.Column("executor_class", sa.String(length=64), nullable=False),
        sa.Column("jobmon_version", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=1), nullable=False),
        sa.Column(
            "status_date",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "created_date",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "heartbeat_date",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["workflow_id"], ["workflow.id"], name=op.f("fk_workflow_run_workflow_id_workflow")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_run")),
    )
    with op.batch_alter_table("workflow_run", schema=None) as batch_op:
        batch_op.create_index(
            "ix_workflow_run_status_heartbeat_date", ["status", "heartbeat_date"], unique=False
        )
        batch_op.create_index("ix_workflow_run_workflow_id_status", ["workflow_id", "status"], unique=False)

    op.create_table(
        "node",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("task_template_version_id", sa.Integer(), nullable=False),
        sa.Column("node_args_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_template_version_id"],
            ["task_template_version.id"],
            name=op.f("fk_node_task_template_version_id_task_template_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node")),
        sa.UniqueConstraint(
            "task_template_version_id",
            "node_args_hash",
            name=op.f("uq_node_task_template_version_id_node_args_hash"),
        ),
    )
    op.create_table(
        "edge",
        sa.Column("dag_id", sa.Integer(), nullable=False),
        sa.Column("downstream_node_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("upstream_node_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(["dag_id"], ["dag.id"], name=op.f("fk_edge_dag_id_dag")),
        sa.ForeignKeyConstraint(
            ["downstream_node_id"], ["node.id"], name=op.f("fk_edge_downstream_node_id_node")
        ),
        sa.ForeignKeyConstraint(
            ["upstream_node_id"], ["node.id"], name=op.f("fk_edge_upstream_node_id_node")
        ),
        sa.PrimaryKeyConstraint("dag_id", "downstream_node_id", "upstream_node_id", name=op.f("pk_edge")),
    )
    op.create_table(
        "node_arg",
        sa.Column("node_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["node_id"], ["node.id"], name=op.f("fk_node_arg_node_id_node")),
        sa.PrimaryKeyConstraint("node_id", "name", name=op.f("pk_node_arg")),
    )
    op.create_table(
        "task",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("task_args_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("num_attempts", sa.Integer(), nullable=False),
        sa.Column("resource_scales", sa.Text(), nullable=False),
        sa.Column("task_resources_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("status", sa.String(length=1), nullable=False),
        sa.Column(
            "status_date",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["node_id"], ["node.id"], name=op.f("fk_task_node_id_node")),
        sa.ForeignKeyConstraint(["workflow_id"], ["workflow.id"], name=op.f("fk_task_workflow_id_workflow")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task")),
        sa.UniqueConstraint("workflow_id", "node_id", name=op.f("uq_task_workflow_id_node_id")),
    )
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.create_index("ix_task_workflow_id_status", ["workflow_id", "status"], unique=False)
        batch_op.create_index("ix_task_workflow_id_status_date", ["workflow_id", "status_date"], unique=False)

    op.create_table(
        "task_arg",
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], name=op.f("fk_task_arg_task_id_task")),
        sa.PrimaryKeyConstraint("task_id", "name", name=op.f("pk_task_arg")),
    )
    op.create_table(
        "task_attribute",
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], name=op.f("fk_task_attribute_task_id_task")),
        sa.PrimaryKeyConstraint("task_id", "name", name=op.f("pk_task_attribute")),
    )
    op.create_table(
        "task_resources",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("resource_type", sa.String(length=1), nullable=False),
        sa.Column("queue", sa.String(length=255), nullable=False),
        sa.Column("num_cores", sa.Integer(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("runtime_s", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], name=op.f("fk_task_resources_task_id_task")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_resources")),
    )
    with op.batch_alter_table("task_resources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_resources_task_id"), ["task_id"], unique=False)

    op.create_table(
        "task_instance",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workflow_run_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("task_resources_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("executor_type", sa.String(length=64), nullable=False),
        sa.Column("executor_id", sa.String(length=64), nullable=True),
        sa.Column("node_name", sa.String(length=255), nullable=True),
        sa.Column("process_group_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=1), nullable=False),
        sa.Column(
            "status_date",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "submitted_date",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "report_by_date",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
        ),
        sa.Column("wallclock", sa.Double(), nullable=True),
        sa.Column("cpu", sa.Double(), nullable=True),
        sa.Column("maxrss", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("maxpss", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("stdout", sa.Text(), nullable=True),
        sa.Column("stderr", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], name=op.f("fk_task_instance_task_id_task")),
        sa.ForeignKeyConstraint(
            ["task_resources_id"],
            ["task_resources.id"],
            name=op.f("fk_task_instance_task_resources_id_task_resources"),
        ),
        sa.ForeignKeyConstraint(
            ["workflow_run_id"],
            ["workflow_run.id"],
            name=op.f("fk_task_instance_workflow_run_id_workflow_run"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_instance")),
    )
    with op.batch_alter_table("task_instance", schema=None) as batch_op:
        batch_op.create_index("ix_task_instance_executor_id", ["executor_id"], unique=False)
        batch_op.create_index(
            "ix_task_instance_status_report_by_date", ["status", "report_by_date"], unique=False
        )
        batch_op.create_index("ix_task_instance_task_id", ["task_id"], unique=False)
        batch_op.create_index(
            "ix_task_instance_workflow_run_id_status", ["workflow_run_id", "status"], unique=False
        )

    op.create_table(
        "task_instance_error_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("task_instance_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "error_time",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_instance_id"],
            ["task_instance.id"],
            name=op.f("fk_task_instance_error_log_task_instance_id_task_instance"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_instance_error_log")),
    )
    with op.batch_alter_table("task_instance_error_log", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_task_instance_error_log_task_instance_id"), ["task_instance_id"], unique=False
        )

    # Queue limits cap resource adjustment after a resource error. Sites change or add rows for their own
    # cluster queues (see docs/operations.md).
    queue = sa.table(
        "queue",
        sa.column("name", sa.String),
        sa.column("max_cores", sa.Integer),
        sa.column("max_memory_mb", sa.Integer),
        sa.column("max_runtime_s", sa.Integer),
    )
    op.bulk_insert(
        queue,
        [
            {"name": "all.q", "max_cores": 64, "max_memory_mb": 256 * 1024, "max_runtime_s": 3 * 86400},
            {"name": "long.q", "max_cores": 64, "max_memory_mb": 256 * 1024, "max_runtime_s": 14 * 86400},
        ],
    )


def downgrade() -> None:
    # Dropping a table drops its indexes; MariaDB refuses to drop an index a foreign key still needs.
    op.drop_table("task_instance_error_log")
    op.drop_table("task_instance")
    op.drop_table("task_resources")
    op.drop_table("task_attribute")
    op.drop_table("task_arg")
    op.drop_table("task")
    op.drop_table("node_arg")
    op.drop_table("edge")
    op.drop_table("node")
    op.drop_table("workflow_run")
    op.drop_table("workflow_attribute")
    op.drop_table("workflow_arg")
    op.drop_table("task_template_version")
    op.drop_table("workflow")
    op.drop_table("task_template")
    op.drop_table("tool_version")
    op.drop_table("tool")
    op.drop_table("queue")
    op.drop_table("dag")
