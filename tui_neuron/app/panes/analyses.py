"""The analyses pane: results files and the jobs the explorer runs (functions, probe, rank, memory) in workers.

It draws nothing itself: it tags roles, selects neurons and shows curves by asking the app to change state.
The jobs are the CLI's (`analysis.jobs`) under the `quick` preset, so a result here is the CLI's answer to
`--preset quick` with the same tokens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.reactive import var
from textual.widget import Widget
from textual.worker import get_current_worker

from ...analysis.roles import Role, coverage_line, paper_intervention, role_groups
from ...checkpoint.format import Checkpoint
from ...errors import UserError
from ...model.interventions import StepRef
from ...paths import cache_dir, free_path, newest, results_dir
from ..bindings import B
from ..messages import AddIntervention, JobDone, JobFailed, ResultsOpened, ShowMatch, ShowPatch, StateRequest, Status, count
from ..progress import answer, status_progress
from ..screens import MemoryScreen, PromptScreen
from ..viewmodel import DecodeView
from .interventions import step_label
from .redraw import Redraws

ROLE_KEYS = {"1": Role.STORING, "2": Role.COUNTING, "3": Role.TRIGGERING, "4": Role.OUTPUTTING}
ROLE_NAMES = tuple(role.value for role in Role)


class AnalysesPane(Redraws, Widget):
    """Roles, rankings, probes and state gradients for the model in the explorer."""

    view: var[DecodeView | None] = var(None, init=False)
    step: var[int] = var(0, init=False)
    selection: var[tuple[int, ...]] = var((), init=False)
    selection_name: var[str] = var("", init=False)
    groups: var[dict[str, list[int]]] = var(dict, init=False)
    role_sets: var[dict[str, dict[str, list[int]]]] = var(dict, init=False)

    REDRAW: ClassVar[dict[str, tuple[str, ...]]] = {}  # draws nothing: roles and selections go up as state

    def __init__(self, checkpoint: Checkpoint, **kw):
        super().__init__(**kw)
        self.ckpt = checkpoint
        self.curves: dict[str, dict] = {}  # role -> dose-response curve, from a loaded `analyze curves` result

    # ------------------------------------------------------------------ roles

    @property
    def token(self) -> str:
        return self.view.control_token if self.view else ""

    def set_roles(self, roles: dict[str, dict[str, list[int]]]) -> None:
        self.post_message(StateRequest(role_sets=roles))

    def action_select_role(self, role: str) -> None:
        if role in self.curves:
            self.post_message(StateRequest(curve=(role, self.curves[role])))
            if not self.role_sets:
                return
        if not self.role_sets:
            self.notify("no neuron-function results: load one with f or run the analysis with F", severity="warning")
            return
        neurons = role_groups(self.role_sets, self.token).get(role, [])
        if not neurons:
            token = self.token or "this token"
            self.notify(f"no {role} neurons for {token!r} in the loaded results, which {coverage_line(self.role_sets)}"
                        f"; press F to analyse {token!r} (a worker; progress and time left in the status box)",
                        severity="warning", timeout=15)
            return
        self.select_group(role, neurons, keep=False)

    def select_group(self, name: str, neurons: list[int], keep: bool = True) -> None:
        """Select a named set of neurons; `keep` also adds it to the session's groups (a role is not kept: it
        is the results file's, and its neurons differ from token to token)."""
        hidden = self.ckpt.config.hidden
        neurons = [int(j) for j in neurons if 0 <= int(j) < hidden]
        if not neurons:
            self.notify(f"{name}: no neurons", severity="warning")
            return
        groups = {**self.groups, name: neurons} if keep else self.groups
        self.post_message(StateRequest(selection=tuple(neurons), neuron=neurons[0], groups=groups,
                                       selection_name=name))
        self.notify(f"{name!r}: {count(len(neurons), 'neuron')} selected")

    def action_paper_manipulation(self) -> None:
        if self.selection_name not in ROLE_NAMES or not self.selection:
            self.notify("select a role's neurons first (1 storing, 2 counting, 3 triggering, 4 outputting)",
                        severity="warning")
            return
        t = self.view.t_at(self.step) if self.view else 0
        step = StepRef.parse(step_label(self.view, t))
        self.post_message(AddIntervention(paper_intervention(self.selection_name, step)))

    # ------------------------------------------------------------------ results files

    def action_load_results(self) -> None:
        latest = newest(results_dir(), "*.json")
        self.app.push_screen(PromptScreen("Results file: functions, probe, rank, crossmodel, curves, storing, match, "
                                          "legibility or patch",
                                          str(latest or ""), f"a .json file, e.g. in {results_dir()}"), self.open_results)

    def open_results(self, text: str | None) -> None:
        """Reopen a results file of any kind; a wrong or damaged one is one line."""
        if not text:
            return
        from ...analysis.results_files import load_results

        try:
            loaded = load_results(text)
        except UserError as e:
            self.notify(f"cannot load {text}: {e}", severity="error")
            return
        self.post_message(ResultsOpened(loaded.path))
        if loaded.kind == "functions":
            self.set_roles(loaded.parsed.roles)
            self.notify(f"roles loaded from {text}; it {coverage_line(loaded.parsed.roles)} (1-4 select a role of "
                        "the control token)", timeout=15)
            self._warn(loaded.data)
        elif loaded.kind == "curves":
            self.curves = loaded.data["curves"]
            self.notify(f"dose-response curves loaded ({', '.join(self.curves)}): 1-4 shows a role's curve")
        elif loaded.kind == "storing":
            self.notify("\n".join(loaded.data["conclusion"]), title="the storing question", timeout=20)
        elif loaded.kind == "match":
            self.post_message(ShowMatch(loaded.data))
        elif loaded.kind == "patch":
            self.post_message(ShowPatch(loaded.data))
        elif loaded.kind == "legibility":
            from ...analysis.legibility import legibility_rows

            lines = [f"{role} {measure}: {rate} (random {rand})" for role, measure, _, rate, rand in
                     legibility_rows(loaded.data)]
            self.notify("\n".join(lines), title=f"legibility of {Path(text).name}", timeout=30)
            self._warn(loaded.data)
        else:
            self.select_group(*loaded.top_neurons(self.ckpt.config.hidden))

    def _warn(self, results: dict) -> None:
        """What the results cannot vouch for (a model or token that positions too few examples, small cells)."""
        from ...analysis.trust import results_warnings

        for line in results_warnings(results):
            self.notify(line, title="do not trust these roles", severity="warning", timeout=30)

    # ------------------------------------------------------------------ jobs (workers)


    def action_run_functions(self) -> None:
        if not self.token:
            self.notify("no control token: type one in the controls box (e.g. king@4)", severity="warning")
            return
        self.post_message(Status(f"⟳ analysing {self.token!r} and 9 frequent tokens…"))
        self.functions_worker(self.token)

    @work(thread=True, exclusive=True, group="functions")
    def functions_worker(self, token: str) -> None:
        from ...analysis.jobs import FunctionsJob, preset, run_functions
        from ...checkpoint.format import atomic_write_text

        worker = get_current_worker()
        try:
            job = preset(FunctionsJob, "quick", cache=str(cache_dir()))
            results, _ = run_functions(self.ckpt, job, status_progress(self), lead=token)
            path = free_path(results_dir(), f"functions-{Path(self.ckpt.path or 'model').stem}-{token}")
            atomic_write_text(path, json.dumps(results, indent=1))
        except (UserError, OSError) as e:
            self.post_message(JobFailed("analysis", str(e)))
            return
        if not worker.is_cancelled:
            self.post_message(JobDone("functions", results, path, token))

    def action_run_probe(self) -> None:
        self.app.push_screen(PromptScreen("Probe: HYP [TAGGED_DIR]; rank HYP (elastic net); probeless HYP; cluster "
                                          "(HYP: position, token, steps-remaining, is-control, pos DIR)", "position",
                                          "hypothesis [tagged corpus]"), self._probe_entered)

    def _probe_entered(self, text: str | None) -> None:
        if not text or not text.split():
            return
        parts = text.split()
        method = parts[0] if parts[0] in ("rank", "probeless", "cluster") else "probe"
        if method != "probe":
            parts = parts[1:]
        if not parts and method != "cluster":
            self.notify(f"{method} needs a hypothesis, e.g. {method} position", severity="warning")
            return
        self.post_message(Status(f"⟳ {method}…"))
        self.probe_worker(parts[0] if parts else "", tuple(parts[1:]), method)

    @work(thread=True, exclusive=True, group="probe")
    def probe_worker(self, hypothesis: str, tagged: tuple[str, ...], method: str = "probe") -> None:
        from ...analysis import jobs

        progress = status_progress(self)
        runs = {"rank": lambda: jobs.run_rank(self.ckpt, jobs.preset(jobs.RankJob, "quick", hypothesis=hypothesis,
                                                                      tagged=tagged), progress),
                "probeless": lambda: jobs.run_probeless(self.ckpt, jobs.preset(
                    jobs.ProbelessJob, "quick", hypothesis=hypothesis, tagged=tagged), progress),
                "cluster": lambda: jobs.run_cluster(self.ckpt, jobs.preset(jobs.ClusterJob, "quick"), progress),
                "probe": lambda: jobs.run_probe(self.ckpt, jobs.preset(jobs.ProbeJob, "quick", hypothesis=hypothesis,
                                                                        tagged=tagged), progress)}
        try:
            res = runs[method]()
        except (UserError, OSError) as e:
            self.post_message(JobFailed("probe", str(e)))
            return
        self.post_message(JobDone(method, res, label=hypothesis))

    def action_run_memory(self) -> None:
        self.post_message(Status("⟳ gradients…"))
        self.memory_worker()

    @work(thread=True, exclusive=True, group="memory")
    def memory_worker(self) -> None:
        from ...analysis.jobs import MemoryJob, preset, run_memory

        answer(self, "memory", lambda: run_memory(self.ckpt, preset(MemoryJob, "quick"), status_progress(self)),
               failed="state gradients")

    @on(JobDone)
    def _job_done(self, message: JobDone) -> None:
        """Show a finished job: roles, the top neurons of a probe or ranking, or the σ curves."""
        if message.job not in ("functions", "rank", "probe", "memory", "probeless", "cluster"):
            return
        message.stop()
        self.post_message(Status(""))
        res = message.result
        if message.job == "functions":
            self.set_roles(res["roles"])
            if message.path is not None:
                self.post_message(ResultsOpened(message.path))
            self.notify(f"roles saved to {message.path}; it {coverage_line(res['roles'])}", timeout=15)
            self._warn(res)
        elif message.job == "rank":
            from ...analysis.neurox import stability_line

            self.select_group(f"rank:{message.label}", res["ranking"][: max(1, self.ckpt.config.hidden // 10)])
            self.notify(f"ranking {message.label}: elastic-net accuracy {res['accuracy']:.3f}; {stability_line(res)}")
        elif message.job == "probeless":
            self.select_group(f"probeless:{message.label}", res["ranking"][: max(1, self.ckpt.config.hidden // 10)])
            self.notify(f"probeless ranking of {message.label} over {res['n_states']} states: the top 10% selected")
        elif message.job == "cluster":
            self.select_group("cluster:representatives", res["representatives"])
            self.notify(f"{len(res['clusters'])} groups of {res['n_neurons']} neurons ({res['redundant']} redundant): "
                        "their representatives selected")
        elif message.job == "probe":
            r = res["plain"]
            self.select_group(f"probe:{message.label}", r["top_neurons"])
            self.notify(f"probe {message.label}: accuracy {r['accuracy']:.3f} (majority {r['majority_baseline']:.3f}); "
                        f"most responsible neuron {res['most_responsible_neuron']}")
        else:
            self.app.push_screen(MemoryScreen(res))

    BINDINGS = [
        *(B(role.value, key, f"select_role('{role.value}')", role.value.capitalize(),
            f"select the {role.value} neurons of the control token (from results; with curves loaded, plot its curve)",
            show=False) for key, role in ROLE_KEYS.items()),
        B("paper-op", "p", "paper_manipulation", "Paper op", "apply the paper's manipulation for the selected role at this step",
          show=False),
        B("results", "f", "load_results", "Results", "reopen a results file: analyze functions (tags roles), probe, rank or "
          "crossmodel (selects the top neurons), curves (1-4 plot a role's curve), storing, match, legibility or patch "
          "(the patching heatmap)"),
        B("analyse", "F", "run_functions", "Analyse", "run the neuron-function analysis for the current control token "
          "and the 9 most frequent other tokens (the quick preset: 10 tokens × 6 examples per T; a worker, with "
          "progress and time left in the status box)", show=False),
        B("probe", "b", "run_probe", "Probe", "run a diagnostic probe, 'rank HYP' (elastic net), 'probeless HYP' (class-mean "
          "differences) or 'cluster' (redundant neurons) in a worker and select the top neurons or representatives "
          "(HYP: position, token, steps-remaining, is-control, pos DIR)", show=False),
        B("memory", "M", "run_memory", "Memory", "state-gradient curves of the encoder (σ1 and σ1/Σσ over delay) in a worker",
          show=False),
    ]
