"""The off-policy learners of algorithms/her_ddpg.py (DDPG) and algorithms/sher.py (SAC with a V network): which loss
reaches which network, the target networks, the temperature, the SHER losses' properties, and the scripts' own
replay_k -> relabelled-share mapping. Every expected value is a hand computation or a property, not the code's
formula re-typed."""
import math
import sys

import numpy as np
import pytest
import torch

from conftest import load_script, run_in_process

her_ddpg = load_script("her_ddpg")
sher = load_script("sher")
IN, ACT, MAX_U, GAMMA, ALPHA = 5, 2, 2.0, 0.98, 0.2
RETURN_RANGE = (-1.0 / (1.0 - GAMMA), 0.0)  # Fetch's: [-50, 0]
R = torch.tensor([-1.0, 0, -1, -1, 0, 0])
DONE = torch.tensor([0.0, 0, 0, 1, 0, 1])


def make_learner(module, **flags):
    """A width-16 learner with fixed random weights (her_ddpg: action_l2 1, as on Fetch)."""
    torch.manual_seed(0)
    extra = dict(action_l2=1.0) if module is her_ddpg else dict(alpha=ALPHA)
    args = module.Args(hidden_size=16, gamma=GAMMA, **{**extra, **flags})
    task = module.Task(horizon=50, target_range=RETURN_RANGE, done_on_reward=False, observe_achieved_goal=False)
    return module.Learner(args, IN, ACT, MAX_U, task, torch.device("cpu"))


def batch(n=32, seed=1) -> dict:
    g = torch.Generator().manual_seed(seed)
    return dict(x=torch.randn(n, IN, generator=g), x_next=torch.randn(n, IN, generator=g),
                u=MAX_U * (2 * torch.rand(n, ACT, generator=g) - 1),
                r=-(torch.rand(n, generator=g) < 0.5).float(), done=(torch.rand(n, generator=g) < 0.3).float())


def perturb(net):
    with torch.no_grad():
        for param in net.parameters():
            param.add_(0.3 * torch.randn_like(param))


def set_output(layer, value):
    """The last linear layer outputs `value` (a number or one per output) whatever its input."""
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.copy_(torch.as_tensor(value, dtype=torch.float32).expand_as(layer.bias))


def same_params(a, b) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


# ---------------------------------------------- gradient routing -----------------------------------------------
def test_ddpg_critic_step_ignores_the_actor_loss():
    """her_ddpg update(): the critic's new weights are the same whatever the online actor is (-Q(s, pi(s)) must
    reach the actor alone; the critic regresses to y from the target actor), while the actor does move."""
    a, b = make_learner(her_ddpg), make_learner(her_ddpg)
    perturb(b.actor)  # the target actor stays as it was
    actor_before = [p.clone() for p in b.actor.parameters()]
    a.update(batch())
    b.update(batch())
    assert same_params(a.qf, b.qf)
    assert not any(torch.equal(p, q) for p, q in zip(actor_before, b.actor.parameters()))


@pytest.mark.parametrize("changed", ["actor", "vf"])
def test_sher_twin_q_step_ignores_the_policy_and_v_losses(changed):
    """sher update(): Q1 and Q2 take the same step whatever the online policy or V network is: only their regression
    to y_q (from V_targ) reaches them, neither the policy loss (on Q1(s, a~)) nor the V loss (through y_v)."""
    a, b = make_learner(sher), make_learner(sher)
    perturb(getattr(b, changed))  # V_targ stays as it was
    for learner in (a, b):
        torch.manual_seed(3)  # the same a~ noise
        learner.update(batch())
    assert same_params(a.qf1, b.qf1) and same_params(a.qf2, b.qf2)
    assert not same_params(a.vf, b.vf), "V's step must see the change (it regresses to y_v of this policy)"


# ----------------------------------------------- target networks -----------------------------------------------
@pytest.mark.parametrize("module", [her_ddpg, sher], ids=["her_ddpg", "sher"])
def test_targets_move_only_by_polyak_in_update_target(module):
    """update() leaves the targets alone; update_target() moves each target weight to polyak * target + (1 - polyak)
    * main and nothing else: main weights 1, targets 0, polyak 0.75 give 0.25, then 0.4375 (by hand)."""
    learner = make_learner(module, polyak=0.75)
    pairs = ([(learner.actor, learner.target_actor), (learner.qf, learner.target_qf)] if module is her_ddpg
             else [(learner.vf, learner.target_vf)])
    before = [[p.clone() for p in target.parameters()] for _, target in pairs]
    learner.update(batch())
    for (_, target), saved in zip(pairs, before):
        assert all(torch.equal(p, q) for p, q in zip(target.parameters(), saved))
    with torch.no_grad():
        for main, target in pairs:
            for p in main.parameters():
                p.fill_(1.0)
            for p in target.parameters():
                p.zero_()
    for expected in (0.25, 0.4375):
        learner.update_target()
        for main, target in pairs:
            assert all((p == expected).all() for p in target.parameters())
            assert all((p == 1.0).all() for p in main.parameters())


# ------------------------------------------------- temperature -------------------------------------------------
@pytest.mark.parametrize("log_std, rises", [(-3.6, True), (-2.6, False)])
def test_autotune_raises_alpha_only_while_the_entropy_is_below_target(log_std, rises):
    """--autotune, a policy of mean 0 and log std -3.6 (entropy about -3) or -2.6 (about -1): one update() raises
    alpha when the batch's entropy (-mean log pi, as update() reports it) is below the target -|A| = -2 and lowers
    it above; without --autotune alpha stays at --alpha."""
    raw = math.atanh((log_std + 5.0) / 3.5 - 1.0)  # Actor: log std = -5 + 3.5 (tanh(raw) + 1)
    for autotune in (True, False):
        learner = make_learner(sher, autotune=autotune)
        set_output(learner.actor.net[-1], [0.0] * ACT + [raw] * ACT)
        out = learner.update(batch(256))
        assert (out["entropy"] < -ACT) == rises
        if autotune:
            assert (out["alpha"] > ALPHA) == rises and out["alpha"] != pytest.approx(ALPHA, abs=1e-6)
        else:
            assert out["alpha"] == pytest.approx(ALPHA, rel=1e-6)


# ------------------------------------------ SHER losses: properties --------------------------------------------
def sher_losses(learner, b, noise=None, alpha=ALPHA):
    with torch.no_grad():
        learner.log_alpha.fill_(math.log(alpha))
        noise = torch.randn(len(b["x"]), ACT, generator=torch.Generator().manual_seed(2)) if noise is None else noise
        return {key: value.item() if value.dim() == 0 else value
                for key, value in learner.losses(b, noise).items()}


def zeroed_critics(**flags):
    """A SHER learner whose Q1, Q2, V and V_targ output 0 everywhere."""
    learner = make_learner(sher, **flags)
    for layer in (learner.qf1.net[-1], learner.qf2.net[-1], learner.vf[-1], learner.target_vf[-1]):
        set_output(layer, 0.0)
    return learner


def test_losses_of_zeroed_networks_take_their_hand_values():
    """Q1 = Q2 = V = V_targ = 0, a policy of mean 0 and log std -1.5, noise 0 (a~ = 0; log pi = |A| (1.5 -
    log sqrt(2 pi) - log max_u), the N(0, e^-1.5) density at its mean over max_u): both Q regress to y_q = r, so
    qf_loss = 2 mean(r^2) = 1; vf_loss = (alpha log pi)^2; actor_loss = alpha log pi; alpha_loss = -alpha (log pi -
    |A|)."""
    learner = zeroed_critics()
    set_output(learner.actor.net[-1], 0.0)
    b = dict(batch(6), r=R, done=DONE)
    out = sher_losses(learner, b, noise=torch.zeros(6, ACT))
    log_pi = ACT * (1.5 - 0.5 * math.log(2 * math.pi) - math.log(MAX_U))
    torch.testing.assert_close(out["log_pi"], torch.full((6,), log_pi))
    assert out["qf_loss"] == pytest.approx(1.0)
    assert out["vf_loss"] == pytest.approx((ALPHA * log_pi) ** 2, rel=1e-5)
    assert out["actor_loss"] == pytest.approx(ALPHA * log_pi, rel=1e-5)
    assert out["alpha_loss"] == pytest.approx(-ALPHA * (log_pi - ACT), rel=1e-5)


@pytest.mark.parametrize("v_targ, y_q", [(10.0, [0, 0, 0, -1, 0, 0]), (-1000.0, [-50, -50, -50, -1, -50, 0])])
def test_q_target_is_clipped_to_the_return_range(v_targ, y_q):
    """V_targ = +10 or -1000 with Q1 = Q2 = 0: y_q = r + gamma (1 - done) V_targ is clipped to [-1/(1-gamma), 0] =
    [-50, 0] (done rows keep r), so qf_loss = 2 mean(y_q^2) with the hand-clipped y_q."""
    learner = zeroed_critics()
    set_output(learner.target_vf[-1], v_targ)
    out = sher_losses(learner, dict(batch(6), r=R, done=DONE))
    assert out["qf_loss"] == pytest.approx(2 * np.mean(np.square(y_q)), rel=1e-5)


def test_done_masks_the_bootstrap():
    """One transition at a time, Q1 = Q2 = 0: changing V_targ (-0.5 or -2) changes qf_loss only where done = 0
    (by hand: r = -1, V_targ = -0.5 gives y_q = -1.49, qf_loss 2 x 1.49^2); a done transition keeps y_q = r."""
    learner = zeroed_critics()
    for r, done in ((-1.0, 0.0), (0.0, 0.0), (-1.0, 1.0), (0.0, 1.0)):
        b = dict(batch(1), r=torch.tensor([r]), done=torch.tensor([done]))
        losses = []
        for v_targ in (-0.5, -2.0):
            set_output(learner.target_vf[-1], v_targ)
            losses.append(sher_losses(learner, b)["qf_loss"])
        if done:
            assert losses == pytest.approx([2 * r**2] * 2)
        else:
            assert losses[0] != pytest.approx(losses[1])
            assert losses[0] == pytest.approx(2 * (r - 0.49) ** 2, rel=1e-5)


def test_alpha_scales_the_entropy_terms_linearly():
    """Q1 = Q2 = V = 0, a random policy: doubling alpha doubles actor_loss (alpha log pi) and quadruples vf_loss
    ((alpha log pi)^2), with the same log pi; alpha is exp(log_alpha)."""
    learner = zeroed_critics()
    b = batch()
    low, high = sher_losses(learner, b, alpha=0.1), sher_losses(learner, b, alpha=0.2)
    torch.testing.assert_close(low["log_pi"], high["log_pi"])
    assert high["actor_loss"] == pytest.approx(2 * low["actor_loss"], rel=1e-5) and low["actor_loss"] != 0
    assert high["vf_loss"] == pytest.approx(4 * low["vf_loss"], rel=1e-5) and low["vf_loss"] > 0


def test_v_target_follows_the_smaller_q_and_the_policy_loss_follows_q1():
    """Q2 = Q1 - 5 everywhere (a copy with its output bias 5 lower), V = 0: raising Q1 by 100 leaves vf_loss as it was
    (y_v = min(Q1, Q2) - alpha log pi follows Q2) and lowers actor_loss by 100 (it is on Q1); lowering Q2 by 1
    changes vf_loss and leaves actor_loss as it was."""
    learner = make_learner(sher)
    set_output(learner.vf[-1], 0.0)
    learner.qf2.load_state_dict(learner.qf1.state_dict())
    with torch.no_grad():
        learner.qf2.net[-1].bias -= 5.0
    b = batch()
    base = sher_losses(learner, b)
    with torch.no_grad():
        learner.qf1.net[-1].bias += 100.0
    q1_up = sher_losses(learner, b)
    assert q1_up["vf_loss"] == base["vf_loss"]
    assert q1_up["actor_loss"] == pytest.approx(base["actor_loss"] - 100.0, rel=1e-5)
    with torch.no_grad():
        learner.qf2.net[-1].bias -= 1.0
    q2_down = sher_losses(learner, b)
    assert q2_down["vf_loss"] != pytest.approx(q1_up["vf_loss"]) and q2_down["actor_loss"] == q1_up["actor_loss"]


# ----------------------------------------------- act, whole script ----------------------------------------------
def test_ddpg_exploring_actions_stay_within_the_action_bounds():
    """An actor saturated at +max_u plus Gaussian noise and random actions: every exploring action stays in
    [-max_u, max_u], and update() reports qf_loss, actor_loss and qf_values."""
    learner = make_learner(her_ddpg)
    set_output(learner.actor.net[-1], 10.0)
    u = learner.act(torch.randn(256, IN), explore=True, rng=np.random.default_rng(0))
    assert u.shape == (256, ACT) and np.abs(u).max() <= MAX_U and (u == MAX_U).any()
    assert set(learner.update(batch())) == {"qf_loss", "actor_loss", "qf_values"}


TINY_PREDATOR_PREY = ["--env-id", "PredatorPrey-v0", "--total-timesteps", "40", "--num-envs", "2", "--n-cycles", "1",
                      "--n-batches", "1", "--n-test-rollouts", "1", "--batch-size", "8", "--hidden-size", "8",
                      "--buffer-size", "1000"]


@pytest.mark.parametrize("script", ["her_ddpg", "sher"])
def test_replay_k_sets_the_relabelled_share(tmp_path, script):
    """The script itself turns --replay-k k into a relabelling probability k / (k + 1): every HER sample of a tiny run
    (seen as the future_p its main loop passes to sample_her_transitions) uses 0, 1/2, 4/5 for k = 0, 1, 4."""
    for k, expected in ((0, 0.0), (1, 0.5), (4, 0.8)):
        seen = []

        def record(frame, event, arg):
            if event == "call" and frame.f_code.co_name == "sample_her_transitions":
                seen.append(frame.f_locals["future_p"])

        (tmp_path / str(k)).mkdir()
        sys.setprofile(record)
        try:
            out = run_in_process(script, tmp_path / str(k), *TINY_PREDATOR_PREY, "--replay-k", str(k))
        finally:
            sys.setprofile(None)
        assert out.returncode == 0, out.stderr[-2000:]
        assert len(seen) >= 2 and all(p == pytest.approx(expected, abs=1e-12) for p in seen), (k, seen)
