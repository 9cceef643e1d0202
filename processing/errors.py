"""One exception hierarchy for the whole IOC (in the manner of httpx's): catch :class:`IocError`
at a boundary and print its message, one line that names the file, field, topic or address.

::

    IocError
    ├── ConfigError      a configuration file or setting is wrong (file, table, key)
    ├── InputError       data is wrong: a registry, a CSV file, a payload
    ├── StateError       saved state cannot be used: a checkpoint, the alert store
    ├── TransportError   a broker cannot be reached or refuses us (MQTT, Kafka, a source URL)
    ├── DeliveryError    an alert channel could not deliver (webhook, e-mail, topic)
    └── AccessError      who is asking may not do this (HTTP 403) ...
        └── NotSignedIn  ... or is not known yet: no session or token, a wrong password (HTTP 401)

The classes each module raises (``RegistryError``, ``CheckpointMismatch``, ``MqttError`` …)
subclass one of these; those that were ``ValueError`` s stay ``ValueError`` s too, so older
``except ValueError`` code keeps working.  Errors the IOC does not raise on purpose (a bug,
``MemoryError``) are not ``IocError`` s and keep their traceback.

>>> from processing.registry import RegistryError
>>> issubclass(RegistryError, InputError) and issubclass(RegistryError, ValueError)
True
"""
from __future__ import annotations

__all__ = ["AccessError", "ConfigError", "DeliveryError", "InputError", "IocError", "NotSignedIn", "StateError",
           "TransportError"]


class IocError(Exception):
    """Something the IOC refused or could not do; ``str(exc)`` is one line a user can act on."""


class ConfigError(IocError, ValueError):
    """A configuration file or setting is wrong; the message names the file, table and key."""


class InputError(IocError, ValueError):
    """Input data is wrong (a registry, a CSV file, a payload); the message names the file or field."""


class StateError(IocError):
    """Saved state cannot be used (a checkpoint, the alert store); the message names the file."""


class TransportError(IocError):
    """A broker cannot be reached, refuses us, or a broker address is wrong; the message names it."""


class DeliveryError(IocError):
    """An alert channel could not deliver a notification; the message names the channel and address."""


class AccessError(IocError):
    """The signed-in user's role (or the token's scope) does not allow the action; HTTP 403."""


class NotSignedIn(AccessError):
    """No valid session or token, a wrong name or password, or a locked account; HTTP 401."""
