"""JobmonConfig: defaults, the TOML file, JOBMON_* overrides, and clear errors naming the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobmon.core import config as config_module
from jobmon.core.config import ClientConfig, ConfigError, JobmonConfig, ServerConfig, WorkerConfig


@pytest.fixture(autouse=True)
def no_system_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A host with /etc/jobmon/jobmon.toml (a deployed appliance) must not leak into these tests.
    monkeypatch.setattr(config_module, "DEFAULT_CONFIG_PATH", tmp_path / "absent" / "jobmon.toml")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jobmon.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file_or_environment() -> None:
    cfg = JobmonConfig.load(environ={})
    assert cfg.source == "defaults"
    assert cfg.client == ClientConfig()
    assert cfg.server == ServerConfig()
    assert cfg.worker == WorkerConfig()
    assert cfg.client.service_url == "http://127.0.0.1:8070"
    assert cfg.server.db_url == "sqlite:///jobmon.sqlite"


def test_read_only_and_migrate_urls_fall_back_to_db_url() -> None:
    server = ServerConfig(db_url="mysql+pymysql://rw:x@127.0.0.1/jobmon")
    assert server.read_only_url == server.db_url
    assert server.migrate_url == server.db_url
    server = ServerConfig(db_url="a://", db_url_read_only="b://", db_url_migrate="c://")
    assert (server.read_only_url, server.migrate_url) == ("b://", "c://")


def test_file_values_are_loaded(tmp_path: Path) -> None:
    path = write(tmp_path, """
[client]
service_url = "http://127.0.0.1:9999"
request_retries = 3
heartbeat_interval = 10   # an integer is a fine float

[server]
db_url = "mysql+pymysql://jobmon_rw:pw@127.0.0.1:3306/jobmon"
db_url_read_only = "mysql+pymysql://jobmon_ro:pw@127.0.0.1:3306/jobmon"
db_pool_size = 9

[worker]
stderr_tail_bytes = 500
""")
    cfg = JobmonConfig.load(path, environ={})
    assert cfg.source == str(path)
    assert cfg.client.service_url == "http://127.0.0.1:9999"
    assert cfg.client.request_retries == 3
    assert cfg.client.heartbeat_interval == 10.0
    assert isinstance(cfg.client.heartbeat_interval, float)
    assert cfg.server.db_pool_size == 9
    assert cfg.server.read_only_url.startswith("mysql+pymysql://jobmon_ro:")
    assert cfg.worker.stderr_tail_bytes == 500
    # Keys the file does not name keep their defaults.
    assert cfg.client.poll_interval == ClientConfig().poll_interval


def test_jobmon_config_variable_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[client]\nservice_url = "http://127.0.0.1:1234"\n')
    cfg = JobmonConfig.load(environ={"JOBMON_CONFIG": str(path)})
    assert cfg.client.service_url == "http://127.0.0.1:1234"
    assert cfg.source == str(path)


def test_an_empty_file_means_defaults(tmp_path: Path) -> None:
    cfg = JobmonConfig.load(write(tmp_path, ""), environ={})
    assert (cfg.client, cfg.server, cfg.worker) == (ClientConfig(), ServerConfig(), WorkerConfig())


def test_environment_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, """
[client]
service_url = "http://127.0.0.1:1111"
request_retries = 3
[server]
db_url = "sqlite:///from-file.sqlite"
db_pool_size = 2
""")
    env = {
        "JOBMON_CLIENT_SERVICE_URL": "http://127.0.0.1:2222",
        "JOBMON_SERVER_DB_POOL_SIZE": "7",
        "JOBMON_WORKER_SAMPLE_INTERVAL": "0.5",
    }
    cfg = JobmonConfig.load(path, environ=env)
    assert cfg.client.service_url == "http://127.0.0.1:2222"
    assert cfg.server.db_pool_size == 7
    assert cfg.worker.sample_interval == 0.5
    # What the environment does not name still comes from the file.
    assert cfg.client.request_retries == 3
    assert cfg.server.db_url == "sqlite:///from-file.sqlite"


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file .*absent\.toml"):
        JobmonConfig.load(tmp_path / "absent.toml", environ={})


def test_bad_toml_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[server\ndb_url = 'x'\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        JobmonConfig.load(path, environ={})


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[server]\ndb_uri = 'x'\n", "db_uri"),
        ("[client]\nservice_url = 'x'\nretries = 1\n", "retries"),
        ("[database]\nurl = 'x'\n", "database"),
    ],
)
def test_unknown_key_or_section_is_named(tmp_path: Path, text: str, names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        JobmonConfig.load(write(tmp_path, text), environ={})


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[client]\nrequest_retries = 'many'\n", r"\[client\] request_retries: expected int"),
        ("[client]\nrequest_retries = 2.5\n", r"\[client\] request_retries: expected int"),
        ("[server]\ndb_pool_size = true\n", r"\[server\] db_pool_size: expected int"),
        ("[server]\ndb_url = 5\n", r"\[server\] db_url: expected a string"),
        ("[worker]\nsample_interval = 'soon'\n", r"\[worker\] sample_interval: expected float"),
        ("server = 1\n", r"\[server\] must be a table"),
    ],
)
def test_wrong_type_in_file_names_the_key(tmp_path: Path, text: str, names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        JobmonConfig.load(write(tmp_path, text), environ={})


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"JOBMON_CLIENT_REQUEST_RETRIES": "lots"}, "JOBMON_CLIENT_REQUEST_RETRIES: expected int"),
        ({"JOBMON_WORKER_HEARTBEAT_INTERVAL": ""}, "JOBMON_WORKER_HEARTBEAT_INTERVAL: expected float"),
    ],
)
def test_wrong_type_in_environment_names_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        JobmonConfig.load(environ=env)


def test_config_error_is_a_value_error() -> None:
    # Callers that only know ValueError still catch it.
    assert issubclass(ConfigError, ValueError)


# -- JOBMON_SERVICES, read by the uWSGI entry point --------------------------------------------------------

def test_services_default_to_all_three() -> None:
    from jobmon.server.wsgi import services_from_env

    assert services_from_env({}) == ("state", "query", "viz")
    assert services_from_env({"JOBMON_SERVICES": "  "}) == ("state", "query", "viz")


def test_services_are_a_comma_list() -> None:
    from jobmon.server.wsgi import services_from_env

    assert services_from_env({"JOBMON_SERVICES": "query"}) == ("query",)
    assert services_from_env({"JOBMON_SERVICES": " query, viz ,query"}) == ("query", "viz")


def test_unknown_service_is_a_config_error() -> None:
    from jobmon.server.wsgi import services_from_env

    with pytest.raises(ConfigError, match=r"JOBMON_SERVICES='state,reaper': expected a comma list of state"):
        services_from_env({"JOBMON_SERVICES": "state,reaper"})
    with pytest.raises(ConfigError, match="expected a comma list"):
        services_from_env({"JOBMON_SERVICES": ",,"})


@pytest.fixture(autouse=True)
def wsgi_import_is_harmless(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Importing jobmon.server.wsgi builds the app from the environment; point it at a throwaway database.
    path = tmp_path / "wsgi.toml"
    path.write_text(f'[server]\ndb_url = "sqlite:///{tmp_path / "wsgi.sqlite"}"\n', encoding="utf-8")
    monkeypatch.setenv("JOBMON_CONFIG", str(path))
    monkeypatch.delenv("JOBMON_SERVICES", raising=False)


def test_reaper_and_qpid_sections_load_from_file_and_environment(tmp_path) -> None:
    from jobmon.core.config import QpidConfig, ReaperConfig

    path = tmp_path / "jobmon.toml"
    path.write_text('[reaper]\npoll_interval = 5\nslack_channel = "#ops"\n\n[qpid]\nbatch_size = 500\n')
    cfg = JobmonConfig.load(path, environ={"JOBMON_REAPER_LOSS_THRESHOLD": "12.5",
                                           "JOBMON_QPID_TABLE": "usage"})
    assert cfg.reaper == ReaperConfig(poll_interval=5.0, slack_channel="#ops", loss_threshold=12.5)
    assert cfg.qpid == QpidConfig(batch_size=500, table="usage")
    # Guppy's defaults.
    assert (ReaperConfig().poll_interval, ReaperConfig().loss_threshold) == (600.0, 300.0)
