from settlements.views import agreements, exports, fx, ledger, reconciliation, runs

app_name = "settlements"

urlpatterns = [
    *ledger.urlpatterns,
    *agreements.urlpatterns,
    *fx.urlpatterns,
    *runs.urlpatterns,
    *exports.urlpatterns,
    *reconciliation.urlpatterns,
]
