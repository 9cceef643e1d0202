"""Every error the IOC raises on purpose is an IocError, and the command line prints one as one line."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from processing.errors import ConfigError, InputError, IocError, StateError, TransportError

PACKAGES = ("processing", "ingest", "simulators", "dashboard", "ioc")


def ioc_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in PACKAGES:
        pkg = importlib.import_module(name)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{name}."):
            if info.name.rsplit(".", 1)[-1].startswith("_"):
                continue
            module = importlib.import_module(info.name)
            for attr, obj in vars(module).items():
                if (inspect.isclass(obj) and issubclass(obj, BaseException) and not attr.startswith("_")
                        and obj.__module__ == module.__name__):
                    found[f"{module.__name__}.{attr}"] = obj
    return found


def test_every_public_exception_class_of_the_ioc_is_an_ioc_error() -> None:
    found = ioc_exceptions()
    assert len(found) >= 14
    strays = sorted(name for name, cls in found.items() if not issubclass(cls, IocError))
    assert strays == []


@pytest.mark.parametrize("name, base", [
    ("processing.registry.RegistryError", InputError), ("ingest.series_csv.SeriesFileError", InputError),
    ("processing.checkpoint.CheckpointMismatch", StateError), ("ioc.alerting.store.StoreError", StateError),
    ("ingest.mqtt.MqttError", TransportError), ("ingest.kafka.KafkaTransportError", TransportError),
    ("ingest.sources.SourceError", TransportError)])
def test_each_error_sits_under_the_family_it_belongs_to(name: str, base: type) -> None:
    module, _, attr = name.rpartition(".")
    assert issubclass(getattr(importlib.import_module(module), attr), base)


def test_one_config_error_for_core_and_alerting_settings_and_no_shadowed_kafka_error() -> None:
    from processing import config as core_config
    from processing.alerting import config as alerting_config
    import ingest.kafka

    assert core_config.ConfigError is alerting_config.ConfigError is ConfigError
    assert not hasattr(ingest.kafka, "KafkaError")        # aiokafka's name stays aiokafka's


def test_the_command_line_prints_an_ioc_error_from_any_command_as_one_line(tmp_path, capsys) -> None:
    from ioc.cli import main

    bad = tmp_path / "sensors.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature"}]}', encoding="utf-8")
    code = main(["control-room-day", "--registry", str(bad), "--hours", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and str(bad) in err
