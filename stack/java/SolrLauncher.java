import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.solr.embedded.JettyConfig;
import org.apache.solr.embedded.JettySolrRunner;

/**
 * Starts Solr in an embedded Jetty (JettySolrRunner binds 127.0.0.1) on a fixed port,
 * with the given solr home (solr.xml + core directories), context path /solr.
 *
 * Usage: java -cp <solr classpath>:<classes> SolrLauncher <solrHome> <port>
 */
public final class SolrLauncher {
  private SolrLauncher() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 2) {
      System.err.println("usage: SolrLauncher <solrHome> <port>");
      System.exit(2);
    }
    Path home = Path.of(args[0]).toAbsolutePath().normalize();
    int port = Integer.parseInt(args[1]);
    if (!Files.isRegularFile(home.resolve("solr.xml"))) {
      System.err.println("no solr.xml in " + home);
      System.exit(2);
    }

    JettyConfig config =
        JettyConfig.builder()
            .setPort(port)
            .setContext("/solr")
            .stopAtShutdown(false)
            .waitForLoadingCoresToFinish(120_000L)
            .withPortRetryTime(0)
            .build();
    Properties nodeProps = new Properties();
    JettySolrRunner runner = new JettySolrRunner(home.toString(), nodeProps, config);

    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    runner.stop();
                  } catch (Exception e) {
                    e.printStackTrace();
                  } finally {
                    stopped.countDown();
                  }
                },
                "solr-launcher-shutdown"));

    runner.start();
    System.out.println("SolrLauncher: Solr started on http://127.0.0.1:" + runner.getLocalPort() + "/solr (home " + home + ")");
    stopped.await();
  }
}
