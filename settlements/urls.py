from settlements.views import agreements, ledger, reconciliation, runs

app_name = "settlements"

urlpatterns = [
    *ledger.urlpatterns,
    *agreements.urlpatterns,
    *runs.urlpatterns,
    *reconciliation.urlpatterns,
]
