"""Session records API (list, export)."""

from fastapi import APIRouter

router = APIRouter()
