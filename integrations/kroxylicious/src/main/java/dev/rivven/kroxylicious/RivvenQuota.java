package dev.rivven.kroxylicious;

import io.kroxylicious.proxy.filter.Filter;
import io.kroxylicious.proxy.filter.FilterFactory;
import io.kroxylicious.proxy.filter.FilterFactoryContext;
import io.kroxylicious.proxy.plugin.Plugin;
import io.kroxylicious.proxy.plugin.Plugins;

/**
 * The plugin the proxy's YAML names ({@code type: RivvenQuota}, or the class name). One sidecar client per
 * filter definition, shared by every connection of the proxy (its calls are pipelined); one filter per connection.
 */
@Plugin(configType = RivvenQuotaConfig.class)
public class RivvenQuota implements FilterFactory<RivvenQuotaConfig, RivvenQuota.Shared> {

    /** What every connection's filter shares. */
    public record Shared(RivvenQuotaConfig config, QuotaDecider decider, FilterMetrics metrics) {
    }

    @Override
    public Shared initialize(FilterFactoryContext context, RivvenQuotaConfig config) {
        RivvenQuotaConfig c = Plugins.requireConfig(this, config);
        FilterMetrics metrics = new FilterMetrics(c.sidecar());
        return new Shared(c, Deciders.connect(c, metrics), metrics);
    }

    @Override
    public Filter createFilter(FilterFactoryContext context, Shared shared) {
        return new RivvenQuotaFilter(shared.decider(), shared.config(), shared.metrics(), context.filterDispatchExecutor());
    }

    @Override
    public void close(Shared shared) {
        shared.decider().close();
    }
}
