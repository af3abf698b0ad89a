from django.urls import path

from shop import views

urlpatterns = [path("items/<int:req>", views.item)]
