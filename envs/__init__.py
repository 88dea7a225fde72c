"""The Predator-Prey goal environment, registered with gymnasium as PredatorPrey-v0.

    env = gymnasium.make("PredatorPrey-v0", prey="attract", spawn="random")
    envs = gymnasium.make_vec("PredatorPrey-v0", num_envs=1024, vectorization_mode="vector_entry_point")
    env = gymnasium.make("PredatorPrey-v0", render_mode="rgb_array"); env.reset(); frame = env.render()

Both pickle with their whole state (pickle.dumps(envs)), so a checkpoint can store them mid-episode.

The scripts build any goal task (Predator-Prey or a gymnasium-robotics one) with `make_goal_env`, and play or
record evaluation episodes with `play_episodes` (envs/goal_env.py).
"""

import gymnasium

from envs.predator_prey import (PREY_BEHAVIOURS, SPAWN_MODES, PredatorPreyCore, PredatorPreyEnv,
                                PredatorPreyVectorEnv)

__all__ = ["PREY_BEHAVIOURS", "SPAWN_MODES", "PredatorPreyCore", "PredatorPreyEnv", "PredatorPreyVectorEnv",
           "GoalEnvError", "as_typed", "check_can_draw", "make_goal_env", "play_episodes", "refuse_broken",
           "shared_rules"]

if "PredatorPrey-v0" not in gymnasium.registry:
    gymnasium.register("PredatorPrey-v0", entry_point="envs.predator_prey:PredatorPreyEnv",
                       vector_entry_point="envs.predator_prey:PredatorPreyVectorEnv",
                       disable_env_checker=True)

from envs.goal_env import (GoalEnvError, as_typed, check_can_draw, make_goal_env,  # noqa: E402 (needs the above)
                           play_episodes, refuse_broken, shared_rules)
