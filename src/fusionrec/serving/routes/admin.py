"""Admin routes (need a key with the ``admin`` scope)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from starlette.concurrency import run_in_threadpool

from fusionrec.errors import FusionRecError
from fusionrec.serving.deps import get_service, require_admin
from fusionrec.serving.responses import ADMIN_ERRORS
from fusionrec.serving.schemas import ReloadResponse
from fusionrec.serving.service import Service

router = APIRouter(prefix="/v1/admin", dependencies=[Depends(require_admin)])


@router.post("/reload", response_model=ReloadResponse, responses=ADMIN_ERRORS)
async def reload(svc: Service = Depends(get_service)) -> ReloadResponse:
    """Load the newest model version (registry) or the model folder again, validate it (files,
    shapes, a smoke recommend), then swap atomically; 409 with the reason when it is refused."""
    try:
        new, previous, secs = await run_in_threadpool(svc.reload)
    except FusionRecError as e:
        raise HTTPException(409, f"reload failed, still serving the previous model: {e}") from None
    return ReloadResponse(version=new.version, previous=previous, seconds=secs)
