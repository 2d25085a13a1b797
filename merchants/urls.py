from django.urls import path

from merchants import views

app_name = "merchants"

urlpatterns = [
    path("", views.merchant_list_view, name="list"),
    path("new/", views.merchant_create_view, name="create"),
    path("import/", views.merchant_import_view, name="import"),
    path("export/", views.merchant_export_view, name="export"),
    path("tasks/", views.my_tasks_view, name="tasks"),
    path("tasks/<id:task_pk>/done/", views.task_complete_view, name="task_done"),
    path("documents/expiring/", views.documents_expiring_view, name="documents_expiring"),
    path("partners/", views.partner_list_view, name="partners"),
    path("partners/new/", views.partner_form_view, name="partner_create"),
    path("partners/<id:pk>/", views.partner_detail_view, name="partner_detail"),
    path("partners/<id:pk>/edit/", views.partner_form_view, name="partner_edit"),
    path(
        "partners/<id:pk>/contacts/add/",
        views.partner_contact_add_view,
        name="partner_contact_add",
    ),
    path(
        "partners/<id:pk>/bank-accounts/add/", views.partner_bank_add_view, name="partner_bank_add"
    ),
    path("<id:pk>/", views.merchant_detail_view, name="detail"),
    path("<id:pk>/edit/", views.merchant_edit_view, name="edit"),
    path("<id:pk>/transfer/", views.merchant_transfer_view, name="transfer"),
    path("<id:pk>/status/", views.merchant_status_view, name="status"),
    path("<id:pk>/risk-level/", views.merchant_risk_view, name="risk"),
    path("<id:pk>/contacts/add/", views.contact_add_view, name="contact_add"),
    path("<id:pk>/owners/add/", views.owner_add_view, name="owner_add"),
    path("<id:pk>/bank-accounts/add/", views.bank_account_add_view, name="bank_add"),
    path("<id:pk>/documents/add/", views.document_upload_view, name="document_add"),
    path(
        "<id:pk>/documents/<id:doc_pk>/review/",
        views.document_review_view,
        name="document_review",
    ),
    path(
        "<id:pk>/documents/<id:doc_pk>/download/",
        views.document_download_view,
        name="document_download",
    ),
    path("<id:pk>/activities/add/", views.activity_add_view, name="activity_add"),
    path("<id:pk>/contracts/add/", views.contract_add_view, name="contract_add"),
    path(
        "<id:pk>/contracts/<id:contract_pk>/sign/",
        views.contract_sign_view,
        name="contract_sign",
    ),
    path("<id:pk>/pricing/add/", views.pricing_add_view, name="pricing_add"),
    path("<id:pk>/reveal/<str:kind>/<id:record_pk>/", views.reveal_view, name="reveal"),
]
