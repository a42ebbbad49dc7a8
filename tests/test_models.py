import pytest
import torch

from cnn_lab.models import FAMILIES, count_parameters, create_model, list_models
from cnn_lab.study import MODEL_ORDER, STUDY_MODELS
from cnn_lab.variant import model_family

EXPECTED_PARAMS = {
    "baseline": 62_006,
    "resnet18": 11_173_962,
    "densenet121": 6_964_106,
}


def test_registry_lists_the_study_models_and_every_model_the_report_orders():
    assert len(STUDY_MODELS) == 4 and set(STUDY_MODELS) <= set(MODEL_ORDER) <= set(list_models())


@pytest.mark.parametrize("name,count", sorted(EXPECTED_PARAMS.items()))
def test_parameter_counts_match_the_study(name, count):
    assert count_parameters(create_model(name)) == count


def test_se_resnet18_adds_only_the_se_gates():
    plain, se = create_model("resnet18"), create_model("se_resnet18")
    gates = sum(p.numel() for n, p in se.named_parameters() if ".se." in n)
    assert gates > 0
    assert count_parameters(se) - gates == count_parameters(plain)
    # every block carries a gate, reduction 16
    blocks = [m for m in se.modules() if type(m).__name__ == "BasicBlock"]
    assert len(blocks) == 8 and all(b.se is not None for b in blocks)
    assert blocks[-1].se.fc1.out_channels == 512 // 16


@pytest.mark.parametrize("name", list_models())
def test_every_model_gives_finite_logits_per_class_and_a_gradient_on_every_parameter(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7)
    out = model(torch.randn(4, 3, 32, 32))
    assert out.shape == (4, 7)
    assert torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", list_models())
def test_every_model_has_a_family(name):
    assert model_family(name)[0] in FAMILIES


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        create_model("resnet19")
    msg = str(err.value)
    assert "resnet19" in msg
    for name in list_models():
        assert name in msg


def test_printouts_read_like_the_study():
    resnet = repr(create_model("resnet18"))
    for part in ("(conv1): Conv2d(3, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)",
                 "(layer4): Sequential", "(linear): Linear(in_features=512, out_features=10, bias=True)",
                 "(shortcut): Sequential()", "BasicBlock("):
        assert part in resnet
    se = repr(create_model("se_resnet18"))
    assert "SEBasicBlock(" in se and "(se): SEModule(" in se
    base = repr(create_model("baseline"))
    assert "(fc1): Linear(in_features=400, out_features=120, bias=True)" in base
    dense = repr(create_model("densenet121"))
    assert "(conv0): Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)" in dense
    assert "(classifier): Linear(in_features=1024, out_features=10, bias=True)" in dense


def test_densenet_cifar_stem_keeps_the_resolution():
    model = create_model("densenet121_cifar")
    assert model.features.conv0.kernel_size == (3, 3) and model.features.conv0.stride == (1, 1)
    feats = model.features(torch.randn(2, 3, 32, 32))
    assert feats.shape[-1] == 4  # 32 -> 16 -> 8 -> 4 through three transitions
    assert create_model("densenet121").features(torch.randn(2, 3, 32, 32)).shape[-1] == 1


def test_plain18_is_resnet18_without_any_shortcut():
    plain, res = create_model("plain18"), create_model("resnet18")
    projections = sum(p.numel() for n, p in res.named_parameters() if ".shortcut." in n)
    assert projections == (64 * 128 + 2 * 128) + (128 * 256 + 2 * 256) + (256 * 512 + 2 * 512)
    assert count_parameters(plain) == count_parameters(res) - projections == 11_000_138
    # the same convolutions, BatchNorms and widths, in the same places
    shapes = {n: p.shape for n, p in res.named_parameters() if ".shortcut." not in n}
    assert {n: p.shape for n, p in plain.named_parameters()} == shapes
    blocks = [m for m in plain.modules() if type(m).__name__ == "BasicBlock"]
    assert len(blocks) == 8 and all(b.shortcut is None for b in blocks)
    assert "PlainBlock(" in repr(plain) and "shortcut" not in repr(plain)
    x = torch.randn(2, 3, 32, 32)
    assert plain(x).shape == (2, 10)
    assert plain.layer4(plain.layer3(plain.layer2(plain.layer1(torch.randn(2, 64, 32, 32))))).shape == (2, 512, 4, 4)


def test_a_plain_block_adds_nothing_to_its_branch():
    from cnn_lab.models.resnet import BasicBlock

    torch.manual_seed(0)
    block = BasicBlock(16, 16, shortcut=False).eval()
    x = torch.randn(2, 16, 8, 8)
    branch = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x)))))
    assert torch.equal(block(x), torch.relu(branch))  # with a shortcut it would be relu(branch + x)


def test_the_34_layer_pair_differs_only_in_its_shortcuts():
    plain, res = create_model("plain34"), create_model("resnet34")
    assert count_parameters(plain) == count_parameters(res) - sum(
        p.numel() for n, p in res.named_parameters() if ".shortcut." in n)
    assert len([m for m in res.modules() if type(m).__name__ == "BasicBlock"]) == 16
