from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "PayCRM core"

    def ready(self) -> None:
        from core import checks, receivers  # noqa: F401  (checks register themselves)

        receivers.connect()
