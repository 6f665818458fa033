# The worker class drill's queue tests enqueue for a real Sidekiq (class DrillWork): sleeps
# DRILL_JOB_MS milliseconds, then counts itself in Redis. Sidekiq reads REDIS_URL.
require "sidekiq"

class DrillWork
  include Sidekiq::Worker
  sidekiq_options retry: false

  def perform(n)
    sleep(ENV.fetch("DRILL_JOB_MS", "0").to_f / 1000)
    Sidekiq.redis { |r| r.incr("drill:q:done:sidekiq") }
  end
end
