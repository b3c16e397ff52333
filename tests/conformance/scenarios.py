"""What users of compiled autograd hit, as small deterministic programs.

Each scenario is a function that takes `backward`, the one way it may run a
backward call (backward(loss) or backward(loss, inputs=[...]) for
autograd.grad), and makes a few training steps. run.py runs each one twice:
once with every backward under real compiled autograd, once in eager mode
under `cautograd record`; compare.py holds the two against each other.

A scenario's `mode` is how compiled autograd is turned on for it:
  "static":  compiled_autograd._enable(compiler, dynamic=False), which is
             what torch.compile with torch._dynamo.config.compiled_autograd
             gives by default (sizes start static): `recompile --dynamic auto`
  "dynamic": compiled_autograd._enable(compiler) as its default, dynamic=True
             (every size dynamic from the start): `recompile --dynamic all`
and `compiler` which compiler function compiles its graphs ("eager": the
graph as it is, no code generation; "inductor": real code, slow).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

SCENARIOS = {}


def scenario(mode="static", compiler="eager"):
    def register(fn):
        fn.mode = mode
        fn.compiler = compiler
        SCENARIOS[fn.__name__] = fn
        return fn

    return register


def mlp():
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


@scenario()
def batch_size_change(backward):
    model = mlp()
    for batch in (4, 4, 2, 2, 7):
        model.zero_grad()
        backward(model(torch.randn(batch, 6)).pow(2).mean())


@scenario()
def ragged_last_batch(backward):
    model = mlp()
    data = torch.randn(11, 6)
    for start in range(0, 11, 4):
        model.zero_grad()
        backward(model(data[start:start + 4]).sum())


@scenario()
def zero_grad_set_to_none_false(backward):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(4):
        opt.zero_grad(set_to_none=False)
        backward(model(torch.randn(4, 6)).pow(2).mean())
        opt.step()


@scenario()
def zero_grad_set_to_none(backward):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(4):
        opt.zero_grad()
        backward(model(torch.randn(4, 6)).pow(2).mean())
        opt.step()


@scenario()
def retain_grad_from_step_2(backward):
    model = mlp()
    for step in range(4):
        model.zero_grad()
        hidden = model[1](model[0](torch.randn(4, 6)))
        if step >= 1:
            hidden.retain_grad()
        backward(model[2](hidden).sum())


@scenario()
def hook_added_after_step_1(backward):
    model = mlp()
    for step in range(4):
        model.zero_grad()
        if step == 1:
            model[0].weight.register_hook(lambda g: g * 0.5)
        backward(model(torch.randn(4, 6)).sum())


class Scale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        return x * factor

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


@scenario()
def custom_function_ctx_scalar(backward):
    model = mlp()
    for factor in (0.5, 0.5, 2.0, 3.0):
        model.zero_grad()
        backward(Scale.apply(model(torch.randn(4, 6)), factor).sum())


@scenario()
def checkpointing(backward):
    from torch.utils.checkpoint import checkpoint

    model = mlp()
    for step in range(4):
        model.zero_grad()
        x = torch.randn(4, 6)
        if step >= 2:
            out = checkpoint(model, x, use_reentrant=False)
        else:
            out = model(x)
        backward(out.sum())


@scenario()
def dtype_change(backward):
    model = mlp()
    for step in range(4):
        model.zero_grad()
        if step == 2:
            model = model.double()
        x = torch.randn(4, 6, dtype=torch.float64 if step >= 2 else torch.float32)
        backward(model(x).sum())


@scenario()
def autocast_some_steps(backward):
    model = mlp()
    for step in range(4):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=step == 2):
            loss = model(torch.randn(4, 6)).float().sum()
        backward(loss)


@scenario()
def freeze_parameters(backward):
    model = mlp()
    for step in range(4):
        model.zero_grad()
        if step == 2:
            model[0].requires_grad_(False)
        backward(model(torch.randn(4, 6)).sum())


@scenario()
def gradient_accumulation(backward):
    model = mlp()
    for _ in range(2):
        model.zero_grad()
        for _ in range(3):
            backward(model(torch.randn(4, 6)).sum() / 3)


@scenario()
def changing_loss(backward):
    model = mlp()
    target = torch.randn(4, 3)
    for step in range(4):
        model.zero_grad()
        out = model(torch.randn(4, 6))
        backward(F.mse_loss(out, target) if step < 2 else F.l1_loss(out, target))


@scenario()
def lstm_sequence_length(backward):
    torch.manual_seed(1)
    lstm = nn.LSTM(3, 5)
    for length in (6, 6, 9, 9):
        lstm.zero_grad()
        out, _ = lstm(torch.randn(length, 2, 3))
        backward(out.sum())


@scenario()
def transformer_sequence_length(backward):
    layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0)
    for length in (5, 5, 7):
        layer.zero_grad()
        backward(layer(torch.randn(length, 2, 8)).sum())


@scenario()
def autograd_grad_inputs(backward):
    model = mlp()
    w, b = model[0].weight, model[0].bias
    for inputs in ([w], [w], [w, b], [b]):
        backward(model(torch.randn(4, 6)).sum(), inputs=inputs)


@scenario(mode="dynamic")
def batch_size_change_dynamic(backward):
    model = mlp()
    for batch in (4, 2, 7, 7):
        model.zero_grad()
        backward(model(torch.randn(batch, 6)).pow(2).mean())


@scenario(compiler="inductor")
def batch_size_change_inductor(backward):
    model = mlp()
    for batch in (4, 4, 2, 2):
        model.zero_grad()
        backward(model(torch.randn(batch, 6)).sum())


@scenario()
def double_backward(backward):
    model = mlp()
    for _ in range(2):
        model.zero_grad()
        x = torch.randn(4, 6, requires_grad=True)
        (gx,) = backward(model(x).sum(), inputs=[x], create_graph=True)
        backward(gx.pow(2).sum())
