from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "PayCRM core"

    def ready(self) -> None:
        from django.urls import register_converter

        from core import checks, receivers  # noqa: F401  (checks register themselves)
        from core.converters import IdConverter

        receivers.connect()
        register_converter(IdConverter, "id")
