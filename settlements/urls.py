from settlements.views import agreements, exports, ledger, reconciliation, runs

app_name = "settlements"

urlpatterns = [
    *ledger.urlpatterns,
    *agreements.urlpatterns,
    *runs.urlpatterns,
    *exports.urlpatterns,
    *reconciliation.urlpatterns,
]
