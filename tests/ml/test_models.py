"""Architectures: the seed tables' parameter counts, shapes, attention maths and carried state."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from emgflow.ml.models import build, model_config  # noqa: E402
from emgflow.ml.networks import LuongAttention  # noqa: E402


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_lstm_cnn_has_the_seed_table_layers():
    net = build(model_config("lstm_cnn", n_outputs=53, channels=10, frames=15, planes=2, hidden=10))
    convs = [m for m in net.cnn.net if isinstance(m, torch.nn.Conv2d)]
    # Seed table: conv params 352, 9,248, 51,264, 20,544, 3,445; PyTorch LSTM(20 -> 10) 1,280; W_a 100.
    assert [n_params(c) for c in convs] == [352, 9248, 51264, 20544, 3445]
    assert n_params(net.lstm) == 1280 and n_params(net.attention) == 100
    assert n_params(net) == 86233


def test_le_convmn_matches_the_lab_model_size():
    # LE_convMN((12, 200), ..., [64, 32, 10], (3, 3)): 278,297 parameters.
    net = build(model_config("convlstm", n_outputs=10, channels=12, frames=200, hidden=[64, 32]))
    assert [n_params(c) for c in net.cells] == [150016, 110720, 15160]
    assert n_params(net) == 278297


@pytest.mark.parametrize("model,planes,frames", [("lstm_cnn", 2, 15), ("lstm_cnn", 1, 15), ("cnn", 1, 15),
                                                 ("lstm_cnn", 2, 20), ("cnn", 1, 30)])
def test_classifier_shapes(model, planes, frames):
    net = build(model_config(model, n_outputs=13, channels=16, frames=frames, planes=planes))
    assert net(torch.randn(4, planes, frames, 16)).shape == (4, 13)


def test_luong_general_attention_is_the_softmax_weighted_sum():
    att = LuongAttention(5)
    h = torch.randn(2, 7, 5)
    scores = torch.einsum("btk,bsk->bts", att.w(h), h)  # (W_a h_t) . h_s
    want = torch.einsum("bts,bsk->btk", torch.softmax(scores, -1), h)
    torch.testing.assert_close(att(h), want)


def test_luong_attentional_state_combines_each_context_with_its_own_hidden_state():
    att = LuongAttention(5, "attentional")
    h = torch.randn(2, 7, 5)
    context = LuongAttention(5)
    context.w = att.w  # same scores, so the same contexts
    want = torch.tanh(torch.cat([context(h), h], dim=-1) @ att.combine.weight.T)  # Luong 2015 eq. 5
    torch.testing.assert_close(att(h), want)
    assert n_params(att) == 25 + 50
    with pytest.raises(ValueError, match="attention output"):
        LuongAttention(5, "mean")
    net = build(model_config("lstm_cnn", n_outputs=53, channels=10, frames=15, planes=2, hidden=10,
                             attention="attentional"))
    assert n_params(net) == 86233 + 200 and net(torch.randn(3, 2, 15, 10)).shape == (3, 53)  # W_c: 10 x 20


@pytest.mark.parametrize("model,extra", [("convlstm", {"layout": "image"}), ("convlstm", {"layout": "channels"}),
                                         ("convlstm", {"layout": "channels", "readout": "dense"}), ("lstm", {})])
def test_recurrent_models_carry_and_reset_state(model, extra):
    torch.manual_seed(0)
    net = build(model_config(model, n_outputs=10, channels=16, frames=20, hidden=[8] if model == "convlstm" else 16,
                             step=1, **extra)).eval()
    x1, x2 = torch.randn(3, 16, 20), torch.randn(3, 16, 20)
    with torch.no_grad():
        _, state = net(x1, [])
        carried, _ = net(x2, state)
        fresh, _ = net(x2, [])
        masked, _ = net(x2, net.mask_state(state, torch.tensor([1.0, 0.0, 1.0])))
    assert carried.shape == (3, 10)
    assert not torch.allclose(carried, fresh)  # the memory matters
    torch.testing.assert_close(masked[1], fresh[1])  # a reset lane starts from zero state
    torch.testing.assert_close(masked[[0, 2]], carried[[0, 2]])


def test_standardize_uses_the_stored_statistics():
    net = build(model_config("cnn", n_outputs=3, channels=4, frames=15))
    net.norm.set(torch.arange(4.0), torch.full((4,), 2.0))
    x = torch.randn(2, 1, 15, 4)
    torch.testing.assert_close(net.norm(x), (x - torch.arange(4.0)) / 2)


def electrodes_reaching_first_cell(layout: str) -> int:
    """How many electrodes feed the first cell's output at electrode row 0 (image) / frame 5."""
    torch.manual_seed(0)
    net = build(model_config("convlstm", n_outputs=2, channels=16, frames=20, hidden=[4], layout=layout)).eval()
    x = torch.randn(1, 16, 20, requires_grad=True)
    _, state = net(x, [])
    h1 = state[0][0]
    (h1[:, 0, 5] if layout == "image" else h1[:, 5]).sum().backward()
    return int((x.grad[0].abs().sum(1) > 0).sum())


def test_channels_layout_mixes_every_electrode_where_the_image_layout_sees_neighbours():
    assert electrodes_reaching_first_cell("image") == 2  # 3x3 kernel at the edge row: rows 0 and 1
    assert electrodes_reaching_first_cell("channels") == 16
    with pytest.raises(ValueError, match="layout"):
        build(model_config("convlstm", n_outputs=2, channels=16, frames=20, hidden=[4], layout="grid"))


@pytest.mark.parametrize("layout", ["image", "channels"])
def test_le_convmn_dense_readout_reads_every_hidden_unit_into_every_joint(layout):
    torch.manual_seed(0)
    net = build(model_config("convlstm", n_outputs=3, channels=8, frames=10, hidden=[6, 5], layout=layout,
                             readout="dense")).eval()
    assert [c.hidden for c in net.cells] == [6, 5]  # no joint-map cell
    span = 8 * 10 if layout == "image" else 10
    assert net.readout.weight.shape == (3, 5 * span)
    seen: dict[str, torch.Tensor] = {}
    net.readout.register_forward_pre_hook(lambda m, i: seen.__setitem__("readout_in", i[0]))
    y, state = net(torch.randn(2, 8, 10), [])
    torch.testing.assert_close(seen["readout_in"], state[2].flatten(1))  # the last cell's h, whole
    assert y.shape == (2, 3)
    with pytest.raises(ValueError, match="readout"):
        build(model_config("convlstm", n_outputs=2, channels=8, frames=10, hidden=[4], readout="pool"))


@pytest.mark.parametrize("layout", ["image", "channels"])
def test_le_convmn_dropout_acts_between_cells_never_on_the_joint_maps(layout):
    torch.manual_seed(0)
    net = build(model_config("convlstm", n_outputs=3, channels=8, frames=10, hidden=[6], layout=layout,
                             dropout=0.5)).train()
    seen: dict[str, torch.Tensor] = {}
    net.cells[0].register_forward_hook(lambda m, i, o: seen.__setitem__("first_h", o[0]))
    net.cells[1].register_forward_hook(lambda m, i, o: seen.__setitem__("last_h", o[0]))
    net.cells[1].register_forward_pre_hook(lambda m, i: seen.__setitem__("last_in", i[0]))
    net.readout.register_forward_pre_hook(lambda m, i: seen.__setitem__("readout_in", i[0]))
    net(torch.randn(4, 8, 10), [])
    torch.testing.assert_close(seen["readout_in"], seen["last_h"].flatten(2))  # joint maps read whole
    assert not torch.equal(seen["last_in"], seen["first_h"])  # the hidden cell's output is dropped out
    net.eval()
    net(torch.randn(4, 8, 10), [])
    torch.testing.assert_close(seen["last_in"], seen["first_h"])


@pytest.mark.parametrize("model", ["convlstm", "lstm"])
def test_seed_ensemble_averages_members_and_scripts(model):
    torch.manual_seed(0)
    arch = {"hidden": [6, 5], "layout": "channels"} if model == "convlstm" else {"hidden": 6, "step": 1}
    cfg = model_config(model, n_outputs=4, channels=8, frames=10, members=3, **arch)
    net = build(cfg).eval()
    x1, x2 = torch.randn(2, 8, 10), torch.randn(2, 8, 10)
    with torch.no_grad():
        _, state = net(x1, [])
        y, _ = net(x2, state)
        size = len(state) // 3
        want = torch.stack([m(x2, state[k * size:(k + 1) * size])[0] for k, m in enumerate(net.members)]).mean(0)
        torch.testing.assert_close(y, want)
        scripted = torch.jit.script(net)
        torch.testing.assert_close(scripted(x2, state)[0], y)
        masked, _ = net(x2, net.mask_state(state, torch.tensor([0.0, 1.0])))
        torch.testing.assert_close(masked[0], net(x2, [])[0][0])
        torch.testing.assert_close(masked[1], y[1])


def test_classifier_ensemble_gives_the_log_of_the_members_mean_probabilities():
    torch.manual_seed(0)
    net = build(model_config("lstm_cnn", n_outputs=4, channels=6, frames=15, planes=2, hidden=5, members=3)).eval()
    x = torch.randn(5, 2, 15, 6)
    with torch.no_grad():
        want = torch.stack([torch.softmax(m(x), dim=1) for m in net.members]).mean(0)
        torch.testing.assert_close(torch.softmax(net(x), dim=1), want)
        torch.testing.assert_close(torch.jit.script(net)(x), net(x))
    assert len(net.members) == 3 and not torch.allclose(net.members[0](x), net.members[1](x))
