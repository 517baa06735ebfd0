"""Evaluation: episodes on the real control envs, ratios, table, plot, and a micro comparison."""

from __future__ import annotations

import json
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
from vim_world.agents import ImaginationReturns, RandomAgent
from vim_world.agents.evaluation import (
    Budget,
    compare_agents,
    fit_world_model,
    head_errors,
    markdown_table,
    plot_results,
    run_episodes,
    steps_ratios,
    success_interval,
    train_world_model,
)


class Greedy:
    """Drifts along the larger offset to the goal zone: succeeds in most Steer episodes."""

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        dx, dy = (obs[:, 0, :2] - obs[:, 1, :2]).T
        return np.where(np.abs(dx) > np.abs(dy), np.where(dx > 0, 4, 3), np.where(dy > 0, 2, 1))


def test_run_episodes_scores_one_episode_per_env():
    greedy = run_episodes(Greedy(), "VimWorld/Steer-v0", 8, seed=0)
    still = run_episodes(RandomAgent(gym.spaces.Discrete(1)), "VimWorld/Steer-v0", 8, seed=0)  # always action 0
    assert greedy.returns.shape == (8,) and greedy.successes.mean() >= 0.75
    assert not still.successes.any()
    assert greedy.returns.mean() > still.returns.mean() + 3
    heldout = run_episodes(Greedy(), "VimWorld/SteerHeldout-v0", 4, seed=0, num_objects=4)
    assert heldout.successes.mean() >= 0.5


def test_run_episodes_shows_frames_to_a_pixel_agent():
    seen = []

    class Watcher(RandomAgent):
        def act(self, obs: np.ndarray) -> np.ndarray:
            seen.append(obs)
            return super().act(obs)

    stats = run_episodes(Watcher(gym.spaces.Discrete(5), seed=0), "VimWorld/Steer-v0", 3, seed=0, obs_mode="pixels",
                         env_kwargs={"obs_size": 32})  # fmt: skip
    assert stats.returns.shape == (3,)
    assert seen[0].shape == (3, 32, 32, 3) and seen[0].dtype == np.uint8 and seen[0].max() > 0
    with pytest.raises(ValueError, match="obs_mode must be 'state' or 'pixels'.*'both'"):
        run_episodes(Watcher(gym.spaces.Discrete(5)), "VimWorld/Steer-v0", 1, obs_mode="both")
    with pytest.raises(ValueError, match="num_objects: state only"):
        run_episodes(Watcher(gym.spaces.Discrete(5)), "VimWorld/Steer-v0", 1, obs_mode="pixels", num_objects=2)


ROWS = [
    {
        "agent": "random",
        "env": "E",
        "real_steps": 0,
        "success_rate": 0.0,
        "success_low": 0.0,
        "success_high": 1.0,
        "mean_return": -1.0,
        "std_return": 1.0,
    },
    {
        "agent": "MPC-CEM (VIM)",
        "env": "E",
        "real_steps": 100,
        "success_rate": 0.5,
        "success_low": 0.0,
        "success_high": 1.0,
        "mean_return": 2.0,
        "std_return": 1.0,
    },
    {
        "agent": "PPO (real env)",
        "env": "E",
        "real_steps": 400,
        "success_rate": 0.2,
        "success_low": 0.0,
        "success_high": 1.0,
        "mean_return": 1.0,
        "std_return": 1.0,
    },
    {
        "agent": "PPO (real env)",
        "env": "E",
        "real_steps": 800,
        "success_rate": 0.6,
        "success_low": 0.0,
        "success_high": 1.0,
        "mean_return": 2.5,
        "std_return": 1.0,
    },
    {
        "agent": "MPC-CEM (VIM)",
        "env": "F",
        "real_steps": 100,
        "success_rate": 0.5,
        "success_low": 0.0,
        "success_high": 1.0,
        "mean_return": 9.0,
        "std_return": 1.0,
    },
    {
        "agent": "PPO (real env)",
        "env": "F",
        "real_steps": 800,
        "success_rate": 0.6,
        "success_low": 0.0,
        "success_high": 1.0,
        "mean_return": 2.5,
        "std_return": 1.0,
    },
]


def test_steps_ratio_is_the_first_matching_ppo_budget():
    ratios = steps_ratios(ROWS)
    assert ratios["E"] == {"MPC-CEM (VIM)": {"ratio": 8.0, "at_least": None}}
    assert ratios["F"] == {"MPC-CEM (VIM)": {"ratio": None, "at_least": 8.0}}


def test_success_interval_is_wilson():
    low, high = success_interval(58, 64)
    assert low == pytest.approx(0.8102, abs=1e-4) and high == pytest.approx(0.9563, abs=1e-4)  # Wilson, by hand
    assert success_interval(64, 64)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="successes"):
        success_interval(5, 4)


def test_table_and_plot(tmp_path):
    table = markdown_table(ROWS)
    assert (
        table.count("\n") == len(ROWS) + 1 and "| E | MPC-CEM (VIM) | 100 | 0.50 [0.00, 1.00] | 2.00 ± 1.00 |" in table
    )
    png = plot_results([{**r, "env": "VimWorld/Steer-v0"} for r in ROWS[:4]], tmp_path / "r.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_agents_end_to_end_micro_budget(tmp_path):
    budget = Budget(
        data_episodes=8,
        episode_len=12,
        train_steps=10,
        ppo_real_steps=(64,),
        ppo_imagined_steps=64,
        eval_episodes=2,
        candidates=8,
        samples=2,
        horizon=3,
        iterations=1,
        ppo_envs=1,
        ppo_imagined_envs=1,
        replan_every=3,
        head_weight_decay=0.5,
        rounds=1,  # one round of data aggregation: 2 MPC episodes added to the 8 random ones
        round_episodes=2,
        actor_critic_steps=2,
    )
    result = compare_agents(tmp_path, budget, eval_seed=777)
    merged = json.loads((tmp_path / "steer_data_round1" / "meta.json").read_text())
    assert merged["episodes"] == 10 and merged["policy"] == "random+MPCAgent"
    assert json.loads((tmp_path / "vim_run_round1" / "train_config.json").read_text())["data"].endswith("round1")
    agents = {"random", "MPC-CEM (VIM)", "MPC-CEM (VIM, task reward)", "PPO in imagination (VIM)", "PPO (real env)",
              "actor-critic in imagination (VIM)", "MPC-CEM + critic (VIM)"}  # fmt: skip
    assert {(r["agent"], r["env"]) for r in result.rows} == {
        (a, e) for a in agents for e in ("VimWorld/Steer-v0", "VimWorld/SteerHeldout-v0")
    }
    saved = json.loads(result.json_path.read_text())
    assert saved["rows"] == result.rows and saved["eval_seed"] == 777
    random_row = next(r for r in result.rows if r["agent"] == "random" and r["env"] == "VimWorld/Steer-v0")
    alone = run_episodes(RandomAgent(gym.spaces.Discrete(5), seed=0), "VimWorld/Steer-v0", 2, seed=777).summary()
    assert random_row["mean_return"] == alone["mean_return"]  # evaluated on worlds 777 and 778
    assert set(saved["steps_ratio"]["VimWorld/SteerHeldout-v0"]) == agents - {"random", "PPO (real env)"}
    assert all(r["real_steps"] == 120 for r in result.rows if "VIM" in r["agent"])  # (8 + 2) episodes x 12 steps
    assert result.plot_path.is_file() and result.markdown_path.read_text().startswith("| env |")
    # one GIF per (agent, env): the first evaluation episode, frame by frame
    assert len(result.episode_gifs) == len(result.rows)
    from PIL import Image

    for path in result.episode_gifs.values():
        with Image.open(path) as gif:
            assert gif.format == "GIF" and gif.n_frames >= 1 and gif.size == (96, 96)


def test_run_episodes_records_the_first_episode_until_it_ends():
    stats = run_episodes(RandomAgent(gym.spaces.Discrete(5), seed=0), "VimWorld/Steer-v0", 3, seed=0, record=True)
    limit = gym.spec("VimWorld/Steer-v0").max_episode_steps
    assert stats.frames.dtype == np.uint8 and stats.frames.shape[1:] == (96, 96, 3)
    assert 1 <= len(stats.frames) <= limit
    assert run_episodes(RandomAgent(gym.spaces.Discrete(5), seed=0), "VimWorld/Steer-v0", 3, seed=0).frames is None


def test_a_comparison_retrains_its_own_run_left_with_other_options(tmp_path):
    """Rerunning a comparison in the same directory with another budget (an upgraded main job)
    retrains its world model instead of refusing the run directory; the same budget resumes."""
    budget = Budget(data_episodes=4, episode_len=12, train_steps=3, ppo_real_steps=(64,), ppo_imagined_steps=64,
                    eval_episodes=1)  # fmt: skip
    train_world_model(budget, tmp_path)
    checkpoint = next((tmp_path / "vim_run" / "checkpoints").iterdir())
    stamp = checkpoint.stat().st_mtime_ns
    train_world_model(budget, tmp_path)  # same options: the finished run is kept, not retrained
    assert checkpoint.stat().st_mtime_ns == stamp
    train_world_model(replace(budget, train_steps=4), tmp_path)
    assert json.loads((tmp_path / "vim_run" / "train_config.json").read_text())["steps"] == 4


def test_a_pixel_world_model_plans_from_frames(tmp_path):
    """``fit_world_model(mode="pixels")`` trains a pixel VIM with the task heads on the budget's
    frames; the budget's MPC agent over it acts on the env's frames."""
    budget = Budget(data_episodes=4, episode_len=12, train_steps=3, ppo_real_steps=(64,), ppo_imagined_steps=64,
                    eval_episodes=1, pixel_train_steps=3, candidates=8, samples=2, horizon=3, iterations=1)  # fmt: skip
    train_world_model(budget, tmp_path)  # collects the budget's data in steer_data
    im = fit_world_model(budget, tmp_path / "steer_data", tmp_path / "vim_pixels", mode="pixels")
    assert (im.config.input_mode, im.config.image_size, im.config.action_dim) == ("pixels", 32, 5)
    assert im.config.reward_head and not im.config.slot_cues
    assert json.loads((tmp_path / "vim_pixels" / "train_config.json").read_text())["seq_len"] == 4
    errors = head_errors(im, tmp_path / "steer_data", seq_len=4)
    assert np.isfinite(errors["reward_mse"])
    agent = budget.mpc_agent(ImaginationReturns(im, gym.spaces.Discrete(5), n_samples=2))
    stats = run_episodes(agent, "VimWorld/Steer-v0", 2, seed=0, obs_mode="pixels", env_kwargs={"obs_size": 32})
    assert stats.returns.shape == (2,) and np.isfinite(stats.returns).all()
    with pytest.raises(ValueError, match="mode must be 'state' or 'pixels', got 'frames'"):
        fit_world_model(budget, tmp_path / "steer_data", tmp_path / "x", mode="frames")
