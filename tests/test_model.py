import pytest
import torch

from learner.model import QNetConfig, QNetwork


@pytest.mark.parametrize("arch", ["encdec", "decoder"])
@pytest.mark.parametrize("dueling", [False, True])
def test_kv_cached_q_values_equal_full_forward(arch, dueling):
    torch.manual_seed(0)
    net = QNetwork(
        QNetConfig(
            arch=arch,
            n_layers=2,
            n_enc_layers=2,
            max_gen_len=10,
            copy_head=dueling,
            q_head="dueling_max" if dueling else "plain",
        )
    ).eval()
    if net.copy_gate is not None:
        torch.nn.init.normal_(net.copy_gate.weight, std=0.05)  # an open pointer, so the test covers it
    prompts = torch.randint(4, 12, (5, 6))
    actions = torch.randint(0, 12, (5, 9))
    full = net(prompts, actions)  # (5, 10, 12)
    q, cache = net.start(prompts, 9)
    steps = [q] + [net.step(actions[:, t], cache) for t in range(9)]
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=0)


def test_dueling_head_is_value_plus_centred_advantage():
    torch.manual_seed(0)
    net = QNetwork(QNetConfig(q_head="dueling"))
    prompts, actions = torch.randint(4, 12, (3, 6)), torch.randint(0, 12, (3, 4))
    q = net(prompts, actions)
    assert q.shape == (3, 5, 12)
    # mean_a Q(s, a) = V(s) exactly, because the advantage is centred
    with torch.no_grad():
        tokens = net._decoder_input(prompts, actions)
        x = net.tok_emb(tokens) + net.dec_pos(torch.arange(tokens.shape[1]))
        for block, mkv in zip(net.decoder, net._encode(prompts), strict=False):
            x = block(x, memory_kv=mkv)
        v = net.value_head(net.ln_f(x)).squeeze(-1)
    torch.testing.assert_close(q.mean(-1), v, atol=1e-5, rtol=0)


def test_article_preset_shape():
    from actors.text import WordTokenizer
    from actors.text_task import text_task
    from tokenq.build import resolve_net_config
    from tokenq.config import load_config

    cfg = load_config("article")
    # the network takes its sizes from the task: a word vocabulary of task.vocab_size words, task.max_length tokens
    tokenizer = WordTokenizer([f"word{i}" for i in range(cfg.task.vocab_size - 5)])  # 5 special tokens
    task = text_task("keywords", tokenizer, None, tokenizer.vocab[:10], max_length=cfg.task.max_length)
    net = resolve_net_config(cfg, task)
    assert (net.vocab_size, net.d_model, net.n_heads, net.n_layers, net.max_gen_len) == (10_000, 256, 8, 6, 100)
    assert net.arch == "encdec" and net.max_prompt_len == 2 and (net.bos_id, net.sep_id) == (1, 3)


def test_copy_head_adds_the_gate_to_prompt_tokens_only():
    torch.manual_seed(0)
    plain = QNetwork(QNetConfig(q_head="dueling_max"))
    copy = QNetwork(QNetConfig(q_head="dueling_max", copy_head=True))
    copy.load_state_dict({**plain.state_dict(), **{k: v for k, v in copy.state_dict().items() if "copy" in k}})
    prompts, actions = torch.tensor([[4, 7, 7, 9, 5, 6]]), torch.tensor([[4, 5]])
    torch.testing.assert_close(copy(prompts, actions), plain(prompts, actions))  # a closed gate changes nothing
    with torch.no_grad():
        copy.copy_gate.bias.fill_(0.5)
    diff = copy(prompts, actions) - plain(prompts, actions)  # (1, 3, 12)
    expected = torch.zeros(12)
    expected[[4, 5, 6, 9]] = 0.5
    expected[7] = 1.0  # token 7 stands twice in the prompt
    torch.testing.assert_close(diff[0, 1], expected)
