"""The seq2seq modules people train, written here from the published code of each codebase (module and parameter
names, forward passes), with each codebase's own greedy loop: what `tui-neuron import` must reproduce.

- PyTorch's "NLP From Scratch: translation with a sequence to sequence network and attention": EncoderRNN,
  DecoderRNN (relu on the embedded input), AttnDecoderRNN with BahdanauAttention; saved as two state dicts.
- The pytorch-seq2seq tutorial series: notebook 1 (LSTM, `rnn`, `fc_out`), notebook 2 (a context-fed GRU decoder),
  notebook 3 (Bahdanau attention, bidirectional GRU encoder with an `fc` bridge); saved as one model state dict.
- OpenNMT-py's RNN model: RNNEncoder (brnn), InputFeedRNNDecoder (StackedLSTM of LSTMCells, GlobalAttention
  general), a separate generator; saved as OpenNMT-py saves a checkpoint (model, generator, vocab, opt).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------------------------- PyTorch tutorial


class EncoderRNN(nn.Module):
    def __init__(self, input_size, hidden_size, dropout_p=0.1):
        super().__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout_p)

    def forward(self, input):
        embedded = self.dropout(self.embedding(input))
        output, hidden = self.gru(embedded)
        return output, hidden


class DecoderRNN(nn.Module):
    def __init__(self, hidden_size, output_size):
        super().__init__()
        self.embedding = nn.Embedding(output_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)

    def forward_step(self, input, hidden, encoder_outputs=None):
        output = self.embedding(input)
        output = F.relu(output)
        output, hidden = self.gru(output, hidden)
        output = self.out(output)
        return output, hidden, None


class BahdanauAttention(nn.Module):
    def __init__(self, hidden_size):
        super().__init__()
        self.Wa = nn.Linear(hidden_size, hidden_size)
        self.Ua = nn.Linear(hidden_size, hidden_size)
        self.Va = nn.Linear(hidden_size, 1)

    def forward(self, query, keys):
        scores = self.Va(torch.tanh(self.Wa(query) + self.Ua(keys)))
        scores = scores.squeeze(2).unsqueeze(1)
        weights = F.softmax(scores, dim=-1)
        context = torch.bmm(weights, keys)
        return context, weights


class AttnDecoderRNN(nn.Module):
    def __init__(self, hidden_size, output_size, dropout_p=0.1):
        super().__init__()
        self.embedding = nn.Embedding(output_size, hidden_size)
        self.attention = BahdanauAttention(hidden_size)
        self.gru = nn.GRU(2 * hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)
        self.dropout = nn.Dropout(dropout_p)

    def forward_step(self, input, hidden, encoder_outputs):
        embedded = self.dropout(self.embedding(input))
        query = hidden.permute(1, 0, 2)
        context, attn_weights = self.attention(query, encoder_outputs)
        input_gru = torch.cat((embedded, context), dim=2)
        output, hidden = self.gru(input_gru, hidden)
        output = self.out(output)
        return output, hidden, attn_weights


@torch.no_grad()
def tutorial_greedy(encoder, decoder, src_ids, sos, eos, max_len):
    """The tutorial's evaluate(): one sentence, decoder fed its own argmax from SOS."""
    encoder_outputs, hidden = encoder(torch.tensor([src_ids]))
    inp = torch.tensor([[sos]])
    tokens, hs, attn = [], [], []
    for _ in range(max_len):
        out, hidden, weights = decoder.forward_step(inp, hidden, encoder_outputs)
        tok = int(out[0, -1].argmax())
        tokens.append(tok)
        hs.append(hidden[0, 0].clone())
        if weights is not None:
            attn.append(weights[0, 0].clone())
        if tok == eos:
            break
        inp = torch.tensor([[tok]])
    return tokens, hs, None, attn


# ------------------------------------------------------------------------------------------ pytorch-seq2seq series


class Encoder1(nn.Module):
    def __init__(self, input_dim, emb_dim, hid_dim, n_layers, dropout):
        super().__init__()
        self.embedding = nn.Embedding(input_dim, emb_dim)
        self.rnn = nn.LSTM(emb_dim, hid_dim, n_layers, dropout=dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src):
        embedded = self.dropout(self.embedding(src))
        outputs, (hidden, cell) = self.rnn(embedded)
        return hidden, cell


class Decoder1(nn.Module):
    def __init__(self, output_dim, emb_dim, hid_dim, n_layers, dropout):
        super().__init__()
        self.output_dim = output_dim
        self.embedding = nn.Embedding(output_dim, emb_dim)
        self.rnn = nn.LSTM(emb_dim, hid_dim, n_layers, dropout=dropout)
        self.fc_out = nn.Linear(hid_dim, output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input, hidden, cell):
        input = input.unsqueeze(0)
        embedded = self.dropout(self.embedding(input))
        output, (hidden, cell) = self.rnn(embedded, (hidden, cell))
        prediction = self.fc_out(output.squeeze(0))
        return prediction, hidden, cell


class Seq2Seq1(nn.Module):
    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder


@torch.no_grad()
def notebook1_greedy(model, src_ids, sos, eos, max_len):
    hidden, cell = model.encoder(torch.tensor(src_ids)[:, None])
    inp = torch.tensor([sos])
    tokens, hs, cs = [], [], []
    for _ in range(max_len):
        out, hidden, cell = model.decoder(inp, hidden, cell)
        tok = int(out[0].argmax())
        tokens.append(tok)
        hs.append(hidden[-1, 0].clone())
        cs.append(cell[-1, 0].clone())
        if tok == eos:
            break
        inp = torch.tensor([tok])
    return tokens, hs, cs, []


class Encoder2(nn.Module):
    def __init__(self, input_dim, emb_dim, hid_dim, dropout):
        super().__init__()
        self.embedding = nn.Embedding(input_dim, emb_dim)
        self.rnn = nn.GRU(emb_dim, hid_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src):
        embedded = self.dropout(self.embedding(src))
        outputs, hidden = self.rnn(embedded)
        return hidden


class Decoder2(nn.Module):
    def __init__(self, output_dim, emb_dim, hid_dim, dropout):
        super().__init__()
        self.embedding = nn.Embedding(output_dim, emb_dim)
        self.rnn = nn.GRU(emb_dim + hid_dim, hid_dim)
        self.fc_out = nn.Linear(emb_dim + hid_dim * 2, output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input, hidden, context):
        input = input.unsqueeze(0)
        embedded = self.dropout(self.embedding(input))
        emb_con = torch.cat((embedded, context), dim=2)
        output, hidden = self.rnn(emb_con, hidden)
        output = torch.cat((embedded.squeeze(0), hidden.squeeze(0), context.squeeze(0)), dim=1)
        prediction = self.fc_out(output)
        return prediction, hidden


@torch.no_grad()
def notebook2_greedy(model, src_ids, sos, eos, max_len):
    context = model.encoder(torch.tensor(src_ids)[:, None])
    hidden = context
    inp = torch.tensor([sos])
    tokens, hs = [], []
    for _ in range(max_len):
        out, hidden = model.decoder(inp, hidden, context)
        tok = int(out[0].argmax())
        tokens.append(tok)
        hs.append(hidden[-1, 0].clone())
        if tok == eos:
            break
        inp = torch.tensor([tok])
    return tokens, hs, None, []


class Encoder3(nn.Module):
    def __init__(self, input_dim, emb_dim, enc_hid_dim, dec_hid_dim, dropout):
        super().__init__()
        self.embedding = nn.Embedding(input_dim, emb_dim)
        self.rnn = nn.GRU(emb_dim, enc_hid_dim, bidirectional=True)
        self.fc = nn.Linear(enc_hid_dim * 2, dec_hid_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src):
        embedded = self.dropout(self.embedding(src))
        outputs, hidden = self.rnn(embedded)
        hidden = torch.tanh(self.fc(torch.cat((hidden[-2, :, :], hidden[-1, :, :]), dim=1)))
        return outputs, hidden


class Attention3(nn.Module):
    def __init__(self, enc_hid_dim, dec_hid_dim):
        super().__init__()
        self.attn = nn.Linear((enc_hid_dim * 2) + dec_hid_dim, dec_hid_dim)
        self.v = nn.Linear(dec_hid_dim, 1, bias=False)

    def forward(self, hidden, encoder_outputs):
        src_len = encoder_outputs.shape[0]
        hidden = hidden.unsqueeze(1).repeat(1, src_len, 1)
        encoder_outputs = encoder_outputs.permute(1, 0, 2)
        energy = torch.tanh(self.attn(torch.cat((hidden, encoder_outputs), dim=2)))
        attention = self.v(energy).squeeze(2)
        return F.softmax(attention, dim=1)


class Decoder3(nn.Module):
    def __init__(self, output_dim, emb_dim, enc_hid_dim, dec_hid_dim, dropout, attention):
        super().__init__()
        self.output_dim = output_dim
        self.attention = attention
        self.embedding = nn.Embedding(output_dim, emb_dim)
        self.rnn = nn.GRU((enc_hid_dim * 2) + emb_dim, dec_hid_dim)
        self.fc_out = nn.Linear((enc_hid_dim * 2) + dec_hid_dim + emb_dim, output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input, hidden, encoder_outputs):
        input = input.unsqueeze(0)
        embedded = self.dropout(self.embedding(input))
        a = self.attention(hidden, encoder_outputs)
        a = a.unsqueeze(1)
        encoder_outputs = encoder_outputs.permute(1, 0, 2)
        weighted = torch.bmm(a, encoder_outputs)
        weighted = weighted.permute(1, 0, 2)
        rnn_input = torch.cat((embedded, weighted), dim=2)
        output, hidden = self.rnn(rnn_input, hidden.unsqueeze(0))
        embedded, output, weighted = embedded.squeeze(0), output.squeeze(0), weighted.squeeze(0)
        prediction = self.fc_out(torch.cat((output, weighted, embedded), dim=1))
        return prediction, hidden.squeeze(0), a.squeeze(1)


@torch.no_grad()
def notebook3_greedy(model, src_ids, sos, eos, max_len):
    encoder_outputs, hidden = model.encoder(torch.tensor(src_ids)[:, None])
    inp = torch.tensor([sos])
    tokens, hs, attn = [], [], []
    for _ in range(max_len):
        out, hidden, a = model.decoder(inp, hidden, encoder_outputs)
        tok = int(out[0].argmax())
        tokens.append(tok)
        hs.append(hidden[0].clone())
        attn.append(a[0].clone())
        if tok == eos:
            break
        inp = torch.tensor([tok])
    return tokens, hs, None, attn


# ------------------------------------------------------------------------------------------------------ OpenNMT-py


class Elementwise(nn.ModuleList):
    def __init__(self, merge=None, *args):
        super().__init__(*args)


class Embeddings(nn.Module):
    def __init__(self, word_vec_size, word_vocab_size, word_padding_idx):
        super().__init__()
        emb_luts = Elementwise("concat", [nn.Embedding(word_vocab_size, word_vec_size, padding_idx=word_padding_idx)])
        self.make_embedding = nn.Sequential()
        self.make_embedding.add_module("emb_luts", emb_luts)

    def forward(self, source):
        return self.make_embedding.emb_luts[0](source)


class RNNEncoder(nn.Module):
    def __init__(self, rnn_type, bidirectional, num_layers, hidden_size, embeddings):
        super().__init__()
        num_directions = 2 if bidirectional else 1
        hidden_size = hidden_size // num_directions
        self.embeddings = embeddings
        self.rnn = getattr(nn, rnn_type)(input_size=embeddings.make_embedding.emb_luts[0].embedding_dim,
                                         hidden_size=hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                                         batch_first=True)

    def forward(self, src):
        emb = self.embeddings(src)
        enc_out, enc_final_hs = self.rnn(emb)
        return enc_out, enc_final_hs


class StackedLSTM(nn.Module):
    def __init__(self, num_layers, input_size, hidden_size, dropout):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.num_layers = num_layers
        self.layers = nn.ModuleList()
        for _ in range(num_layers):
            self.layers.append(nn.LSTMCell(input_size, hidden_size))
            input_size = hidden_size

    def forward(self, input_feed, hidden):
        h_0, c_0 = hidden
        h_1, c_1 = [], []
        for i, layer in enumerate(self.layers):
            h_1_i, c_1_i = layer(input_feed, (h_0[i], c_0[i]))
            input_feed = h_1_i
            if i + 1 != self.num_layers:
                input_feed = self.dropout(input_feed)
            h_1 += [h_1_i]
            c_1 += [c_1_i]
        return input_feed, (torch.stack(h_1), torch.stack(c_1))


class GlobalAttention(nn.Module):
    def __init__(self, dim, attn_type="general"):
        super().__init__()
        self.attn_type = attn_type
        if attn_type == "general":
            self.linear_in = nn.Linear(dim, dim, bias=False)
        elif attn_type == "mlp":
            self.linear_context = nn.Linear(dim, dim, bias=False)
            self.linear_query = nn.Linear(dim, dim, bias=True)
            self.v = nn.Linear(dim, 1, bias=False)
        self.linear_out = nn.Linear(dim * 2, dim, bias=attn_type == "mlp")

    def score(self, h_t, h_s):
        if self.attn_type in ("general", "dot"):
            if self.attn_type == "general":
                h_t = self.linear_in(h_t)
            return torch.bmm(h_t, h_s.transpose(1, 2))
        wq = self.linear_query(h_t)[:, :, None]  # [B, tgt, 1, dim]
        uh = self.linear_context(h_s)[:, None]  # [B, 1, src, dim]
        return self.v(torch.tanh(wq + uh)).squeeze(-1)

    def forward(self, src, enc_out):
        src = src.unsqueeze(1)
        align = self.score(src, enc_out)
        align_vectors = F.softmax(align, -1)
        c = torch.bmm(align_vectors, enc_out)
        concat_c = torch.cat([c, src], 2)
        attn_h = self.linear_out(concat_c)
        if self.attn_type in ("general", "dot"):
            attn_h = torch.tanh(attn_h)
        return attn_h.squeeze(1), align_vectors.squeeze(1)


class InputFeedRNNDecoder(nn.Module):
    def __init__(self, num_layers, hidden_size, embeddings, attn_type="general"):
        super().__init__()
        self.embeddings = embeddings
        emb_size = embeddings.make_embedding.emb_luts[0].embedding_dim
        self.rnn = StackedLSTM(num_layers, emb_size + hidden_size, hidden_size, 0.0)
        self.attn = GlobalAttention(hidden_size, attn_type=attn_type)

    def step(self, tok, state, input_feed, enc_out):
        emb_t = self.embeddings(tok)
        decoder_input = torch.cat([emb_t, input_feed], 1)
        rnn_output, state = self.rnn(decoder_input, state)
        decoder_output, p_attn = self.attn(rnn_output, enc_out)
        return decoder_output, state, p_attn


class StdRNNDecoder(nn.Module):
    """OpenNMT-py's decoder without input feeding: an nn.LSTM over the embeddings, then global attention."""

    def __init__(self, num_layers, hidden_size, embeddings, attn_type="general"):
        super().__init__()
        self.embeddings = embeddings
        emb_size = embeddings.make_embedding.emb_luts[0].embedding_dim
        self.rnn = nn.LSTM(emb_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.attn = GlobalAttention(hidden_size, attn_type=attn_type)

    def step(self, tok, state, input_feed, enc_out):
        rnn_output, state = self.rnn(self.embeddings(tok)[:, None], state)
        decoder_output, p_attn = self.attn(rnn_output[:, 0], enc_out)
        return decoder_output, state, p_attn


class NMTModel(nn.Module):
    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder


def fix_enc_hidden(hidden, bidirectional=True):
    """OpenNMT-py's RNNDecoderBase._fix_enc_hidden: a brnn's directions joined per layer."""
    if not bidirectional:
        return hidden
    return torch.cat([hidden[0 : hidden.size(0) : 2], hidden[1 : hidden.size(0) : 2]], 2)


@torch.no_grad()
def opennmt_greedy(model, generator, src_ids, bos, eos, max_len):
    enc_out, (h, c) = model.encoder(torch.tensor([src_ids]))
    bidirectional = model.encoder.rnn.bidirectional
    state = (fix_enc_hidden(h, bidirectional), fix_enc_hidden(c, bidirectional))
    input_feed = torch.zeros(1, state[0].shape[-1])
    tok = torch.tensor([bos])
    tokens, hs, cs, attn = [], [], [], []
    for _ in range(max_len):
        dec_out, state, p_attn = model.decoder.step(tok, state, input_feed, enc_out)
        input_feed = dec_out
        nxt = int(generator(dec_out)[0].argmax())
        tokens.append(nxt)
        hs.append(state[0][-1, 0].clone())
        cs.append(state[1][-1, 0].clone())
        attn.append(p_attn[0].clone())
        if nxt == eos:
            break
        tok = torch.tensor([nxt])
    return tokens, hs, cs, attn


def opennmt_checkpoint(model, generator, src_vocab, tgt_vocab):
    """What OpenNMT-py's ModelSaver writes: model without the generator, the generator, vocab, opt, optim."""
    model_state = {k: v for k, v in model.state_dict().items() if "generator" not in k}
    return {"model": model_state, "generator": generator.state_dict(), "vocab": {"src": src_vocab, "tgt": tgt_vocab},
            "opt": argparse.Namespace(encoder_type="brnn", rnn_type="LSTM", global_attention="general",
                                      input_feed=1, layers=2),
            "optim": {"step": 10}}
