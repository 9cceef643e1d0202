"""The cities the IOC ships with, one folder each (sensors, wards, alerting rules).

Installed as the data-only package ``ioc.cityfiles`` (see pyproject.toml and :mod:`ioc.paths`);
this file only makes the folder a package, so editable installs and wheels find it alike."""
