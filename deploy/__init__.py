"""Broker configuration templates (Mosquitto, Kafka, the Maven list of Kafka's jars).

Installed as the data-only package ``ioc.deployfiles`` (see pyproject.toml and :mod:`ioc.paths`);
this file only makes the folder a package, so editable installs and wheels find it alike."""
