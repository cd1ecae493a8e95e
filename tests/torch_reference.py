"""The reference the stepper must match, with torch's own modules only: the stepper tests and bench_core use it."""

import torch


@torch.no_grad()
def torch_greedy(model, src: torch.Tensor, src_len: torch.Tensor, max_steps: int, bos_id: int) -> torch.Tensor:
    """Greedy decode with torch's own modules, one step at a time: the reference the stepper must match."""
    state = model.encode(src, src_len)
    tok = torch.full((src.shape[0], 1), bos_id, dtype=torch.long)
    outs = []
    for _ in range(max_steps):
        out, state = model.decoder(model.target_embedding(tok), state)
        tok = model.output(out).argmax(-1)
        outs.append(tok)
    return torch.cat(outs, 1)  # [B, max_steps]
