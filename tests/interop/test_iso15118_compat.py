"""The pydantic.v1 import hook that lets iso15118 0.31.2 run beside pydantic v2."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap

import pydantic
import pydantic.v1
import pytest

from evse_hal.iso15118 import compat


def _rewritten(source: str) -> str:
    return ast.unparse(compat.rewrite_pydantic_imports(textwrap.dedent(source)))


def test_from_imports_point_at_pydantic_v1():
    assert _rewritten("from pydantic import Field, validator") == "from pydantic.v1 import Field, validator"
    assert _rewritten("from pydantic.error_wrappers import ValidationError") == \
        "from pydantic.v1.error_wrappers import ValidationError"


def test_multiline_import_is_rewritten_and_strings_are_not():
    source = '''
        from pydantic import (
            Field,
            root_validator,
        )
        NOTE = "from pydantic import Field"  # from pydantic import x
    '''
    assert _rewritten(source) == ("from pydantic.v1 import Field, root_validator\n"
                                  "NOTE = 'from pydantic import Field'")


def test_plain_import_binds_v1_under_the_same_name():
    assert _rewritten("import pydantic") == "import pydantic.v1 as pydantic"
    assert _rewritten("import pydantic.fields as pf") == "import pydantic.v1.fields as pf"


def test_imports_already_on_v1_and_other_packages_are_left_alone():
    for source in ("from pydantic.v1 import Field", "import pydantic.v1 as pydantic",
                   "import pydantic_core", "from pydantic_settings import BaseSettings",
                   "from .pydantic import x"):
        assert _rewritten(source) == source


def test_dotted_import_without_alias_is_refused_with_a_clear_error():
    with pytest.raises(compat.UnsupportedPydanticImport, match="import pydantic.fields"):
        _rewritten("import pydantic.fields")


def test_install_is_idempotent():
    compat.install()
    compat.install()
    assert sum(isinstance(f, compat.Iso15118PydanticV1Finder) for f in sys.meta_path) == 1


def test_iso15118_message_models_import_and_validate_on_pydantic_v1():
    compat.install()
    from iso15118.shared.messages.iso15118_2.body import SessionSetupRes
    from iso15118.shared.messages.iso15118_2.datatypes import ResponseCode

    assert issubclass(SessionSetupRes, pydantic.v1.BaseModel)
    assert not issubclass(SessionSetupRes, pydantic.BaseModel)
    message = SessionSetupRes(ResponseCode="OK_NewSessionEstablished", EVSEID="DE*ABC*E1234567*1")
    assert message.response_code is ResponseCode.OK_NEW_SESSION_ESTABLISHED
    with pytest.raises(pydantic.v1.ValidationError, match="EVSEID"):
        SessionSetupRes(ResponseCode="OK_NewSessionEstablished", EVSEID="EVSE-1")  # < 7 characters


def _run_fresh_interpreter(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60)


def test_importing_our_packages_installs_nothing():
    result = _run_fresh_interpreter("""
        import evse_hal, evse_hal.iso15118.compat as compat
        assert not compat.is_installed()
        """)
    assert result.returncode == 0, result.stderr


def test_install_after_iso15118_was_imported_without_the_hook_fails_loudly():
    result = _run_fresh_interpreter("""
        import warnings; warnings.simplefilter("ignore")
        try:
            import iso15118.shared.messages.datatypes  # pydantic v2 objects (or an import error)
        except Exception:
            pass
        import evse_hal.iso15118.compat as compat
        try:
            compat.install()
        except RuntimeError as exc:
            print("refused:", exc)
        """)
    assert "refused: iso15118 modules were imported before" in result.stdout, result.stderr
