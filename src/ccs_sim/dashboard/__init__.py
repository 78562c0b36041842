"""The live web dashboard served by the controller (page, assets, push stream)."""

from fastapi import APIRouter

router = APIRouter()
