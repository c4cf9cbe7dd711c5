"""The registry derives an optimizer's family from the module that registers it (the module the exporter inlines)."""

import pytest
import torch

from optbench import optim
from optbench.optim.registry import family_of, register


def test_family_is_the_registering_module():
    assert family_of("optbench.optim.muon") == "muon"
    assert family_of("optbench.optim.parts.adam") == "parts.adam"
    assert family_of("tests.optim.test_registry") is None
    assert optim.info("adam").family == "adamw"  # torch's class, registered by optbench/optim/adamw.py
    assert optim.info("adamw-schedulefree").family == "schedulefree"


def test_a_wrong_or_missing_family_is_refused():
    with pytest.raises(ValueError, match="outside optbench.optim; pass family="):
        register("test-no-family", torch.optim.SGD, reference="test only")
    zoo_module = {"__name__": "optbench.optim.fake", "register": register, "torch": torch}
    with pytest.raises(ValueError, match="family 'other' is not its module 'fake'"):
        exec("register('test-wrong-family', torch.optim.SGD, family='other', reference='test only')", zoo_module)
    assert "test-no-family" not in optim.names() and "test-wrong-family" not in optim.names()
