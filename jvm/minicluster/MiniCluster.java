import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.hdfs.HdfsConfiguration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.util.ShutdownHookManager;
import org.apache.hadoop.yarn.api.records.NodeReport;
import org.apache.hadoop.yarn.api.records.NodeState;
import org.apache.hadoop.yarn.client.api.YarnClient;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.apache.hadoop.yarn.server.MiniYARNCluster;

/**
 * A single-node HDFS (NameNode + DataNode) and YARN (ResourceManager + NodeManager) in this JVM,
 * on loopback, for etlc's YARN tests (scripts/services.sh starts it).
 *
 * <p>Usage: MiniCluster CONF_DIR WORK_DIR NAMENODE_PORT NM_MEMORY_MB NM_VCORES
 *
 * <p>Writes core-site.xml, hdfs-site.xml and yarn-site.xml (a client's HADOOP_CONF_DIR) and
 * cluster.properties (web addresses, the NodeManager's directories) into CONF_DIR, then prints
 * READY once HDFS and YARN have each answered a client's call; FAILED and exit 1 if the start
 * fails. SIGTERM or SIGINT stops YARN, then HDFS, and exits 0.
 */
public final class MiniCluster {

  private static volatile MiniDFSCluster dfs;
  private static volatile MiniYARNCluster yarn;
  private static final CountDownLatch STOP_REQUESTED = new CountDownLatch(1);
  private static final AtomicBoolean STOPPING = new AtomicBoolean();

  private MiniCluster() {}

  public static void main(String[] args) {
    if (args.length != 5) {
      System.err.println("usage: MiniCluster CONF_DIR WORK_DIR NAMENODE_PORT NM_MEMORY_MB NM_VCORES");
      System.exit(2);
    }
    // The services stop on the main thread, not in a JVM shutdown hook: a DataNode stopped inside
    // one throws "Shutdown in progress, cannot remove a shutdownHook".
    sun.misc.SignalHandler onSignal = sig -> STOP_REQUESTED.countDown();
    sun.misc.Signal.handle(new sun.misc.Signal("TERM"), onSignal);
    sun.misc.Signal.handle(new sun.misc.Signal("INT"), onSignal);
    ShutdownHookManager.get().addShutdownHook(MiniCluster::stopAll, 100, 60, TimeUnit.SECONDS);
    int rc = 0;
    try {
      start(new File(args[0]).getAbsoluteFile(), new File(args[1]).getAbsoluteFile(),
          Integer.parseInt(args[2]), Integer.parseInt(args[3]), Integer.parseInt(args[4]));
      STOP_REQUESTED.await();
      say("stop requested");
    } catch (Throwable t) {
      // HDFS's threads are not daemons: without stopping them a failed start leaves the JVM up.
      t.printStackTrace();
      say("FAILED: " + t);
      rc = 1;
    }
    stopAll();
    System.exit(rc);
  }

  private static void start(File confDir, File workDir, int nnPort, int nmMemoryMb, int nmVcores)
      throws Exception {
    Files.createDirectories(confDir.toPath());
    Files.createDirectories(workDir.toPath());
    long t0 = System.nanoTime();
    Configuration hdfsConf = new HdfsConfiguration();
    hdfsConf.setInt("dfs.replication", 1);
    dfs = new MiniDFSCluster.Builder(hdfsConf, new File(workDir, "dfs"))
        .numDataNodes(1)
        .nameNodePort(nnPort)
        .format(true)
        .build();
    dfs.waitActive();
    String fsUri = "hdfs://127.0.0.1:" + dfs.getNameNodePort();
    long tHdfs = System.nanoTime();
    say("HDFS up at " + fsUri + " in " + ms(t0, tHdfs) + " ms");

    yarn = new MiniYARNCluster("etlc", 1, 1, 1, 1);
    yarn.init(yarnConf(fsUri, nmMemoryMb, nmVcores));
    yarn.start();
    if (!yarn.waitForNodeManagersToConnect(60_000)) {
      throw new IllegalStateException("the NodeManager did not register within 60 s");
    }
    Configuration rm = yarn.getConfig();
    long tYarn = System.nanoTime();
    say("YARN up in " + ms(tHdfs, tYarn) + " ms, ResourceManager at "
        + rm.get(YarnConfiguration.RM_ADDRESS));

    writeClientConf(confDir, fsUri, rm);
    NodeReport node = checkReady(confDir);
    writeProperties(confDir, fsUri, rm, node);
    say("ready in " + ms(t0, System.nanoTime()) + " ms: " + fsUri + ", ResourceManager web http://"
        + rm.get(YarnConfiguration.RM_WEBAPP_ADDRESS));
    System.out.println("READY");
    System.out.flush();
  }

  private static YarnConfiguration yarnConf(String fsUri, int nmMemoryMb, int nmVcores)
      throws IOException {
    YarnConfiguration conf = new YarnConfiguration();
    conf.set("fs.defaultFS", fsUri);
    // MiniYARNCluster overwrites the NodeManager's memory with this key's value (default 4096).
    conf.setInt("yarn.minicluster.yarn.nodemanager.resource.memory-mb", nmMemoryMb);
    conf.setInt(YarnConfiguration.NM_VCORES, nmVcores);
    conf.setInt(YarnConfiguration.RM_SCHEDULER_MINIMUM_ALLOCATION_MB, 128);
    conf.setInt(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_MB, nmMemoryMb);
    conf.setInt(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_VCORES, nmVcores);
    conf.setBoolean(YarnConfiguration.NM_VMEM_CHECK_ENABLED, false);
    conf.setBoolean(YarnConfiguration.NM_PMEM_CHECK_ENABLED, false);
    // A shared build disk that is fairly full must not mark the only node unhealthy.
    conf.set("yarn.nodemanager.disk-health-checker.max-disk-utilization-per-disk-percentage",
        "100.0");
    // An application's container files (launch_container.sh, its Spark settings) stay 10 minutes
    // after it ends, so the tests can check what YARN kept.
    conf.setInt(YarnConfiguration.DEBUG_NM_DELETE_DELAY_SEC, 600);
    // No capacity-scheduler.xml ships in the hadoop-client jars: one queue, in code.
    conf.set("yarn.scheduler.capacity.root.queues", "default");
    conf.setInt("yarn.scheduler.capacity.root.default.capacity", 100);
    conf.setInt("yarn.scheduler.capacity.root.default.maximum-capacity", 100);
    conf.setFloat("yarn.scheduler.capacity.root.default.user-limit-factor", 1);
    conf.set("yarn.scheduler.capacity.root.default.state", "RUNNING");
    conf.set("yarn.scheduler.capacity.root.default.acl_submit_applications", "*");
    conf.set("yarn.scheduler.capacity.root.default.acl_administer_queue", "*");
    conf.setFloat("yarn.scheduler.capacity.maximum-am-resource-percent", 0.5f);
    conf.setInt("yarn.scheduler.capacity.node-locality-delay", -1);
    // Ports chosen before the start: left to MiniYARNCluster, the ResourceManager keeps ":0" as
    // its web port and every application's tracking URL reads http://localhost:0/proxy/...
    String host = MiniYARNCluster.getHostname();
    conf.set(YarnConfiguration.RM_HOSTNAME, host);
    // Listen on loopback whatever the host name resolves to: the queue takes any user's
    // application, and the NodeManager runs what it is given.
    conf.set(YarnConfiguration.RM_BIND_HOST, "127.0.0.1");
    conf.set(YarnConfiguration.NM_BIND_HOST, "127.0.0.1");
    conf.setBoolean(YarnConfiguration.YARN_MINICLUSTER_FIXED_PORTS, true);
    conf.set(YarnConfiguration.RM_ADDRESS, host + ":" + freePort());
    conf.set(YarnConfiguration.RM_SCHEDULER_ADDRESS, host + ":" + freePort());
    conf.set(YarnConfiguration.RM_RESOURCE_TRACKER_ADDRESS, host + ":" + freePort());
    conf.set(YarnConfiguration.RM_ADMIN_ADDRESS, host + ":" + freePort());
    conf.set(YarnConfiguration.RM_WEBAPP_ADDRESS, host + ":" + freePort());
    return conf;
  }

  /** A client's HADOOP_CONF_DIR: the file system, and every yarn.* setting not at its default. */
  private static void writeClientConf(File confDir, String fsUri, Configuration rm)
      throws IOException {
    Configuration core = new Configuration(false);
    core.set("fs.defaultFS", fsUri);
    writeXml(core, new File(confDir, "core-site.xml"));
    Configuration hdfsSite = new Configuration(false);
    hdfsSite.set("dfs.replication", "1");
    writeXml(hdfsSite, new File(confDir, "hdfs-site.xml"));
    Configuration defaults = new YarnConfiguration();
    TreeMap<String, String> changed = new TreeMap<>();
    for (Map.Entry<String, String> e : rm) {
      String key = e.getKey();
      if (!key.startsWith("yarn.") || key.startsWith("yarn.minicluster.")
          || key.equals("yarn.is.minicluster")) {
        continue;
      }
      String stock = defaults.getRaw(key);
      if (stock == null || !stock.equals(e.getValue())) {
        changed.put(key, e.getValue());
      }
    }
    Configuration yarnSite = new Configuration(false);
    changed.forEach(yarnSite::set);
    writeXml(yarnSite, new File(confDir, "yarn-site.xml"));
  }

  /** Ready means a client reading CONF_DIR gets answers: HDFS lists its root, YARN a node. */
  private static NodeReport checkReady(File confDir) throws Exception {
    Configuration client = new Configuration(false);
    for (String name : new String[] {"core-site.xml", "hdfs-site.xml", "yarn-site.xml"}) {
      client.addResource(new Path(new File(confDir, name).toURI()));
    }
    YarnConfiguration conf = new YarnConfiguration(client);
    try (FileSystem fs = FileSystem.newInstance(conf)) {
      Path tmp = new Path("/tmp");
      fs.mkdirs(tmp);
      fs.setPermission(tmp, new FsPermission((short) 01777));
      fs.mkdirs(new Path("/user/" + System.getProperty("user.name")));
      if (!fs.getFileStatus(new Path("/")).isDirectory()) {
        throw new IllegalStateException("HDFS's root is not a directory");
      }
    }
    YarnClient yarnClient = YarnClient.createYarnClient();
    yarnClient.init(conf);
    yarnClient.start();
    try {
      List<NodeReport> nodes = yarnClient.getNodeReports(NodeState.RUNNING);
      if (nodes.isEmpty()) {
        throw new IllegalStateException("YARN reports no running node");
      }
      return nodes.get(0);
    } finally {
      yarnClient.stop();
    }
  }

  private static void writeProperties(File confDir, String fsUri, Configuration rm, NodeReport node)
      throws IOException {
    Configuration nm = yarn.getNodeManager(0).getConfig();
    InetSocketAddress nnHttp = dfs.getNameNode().getHttpAddress();
    File target = new File(confDir, "cluster.properties");
    File tmp = new File(confDir, "cluster.properties.tmp");
    try (PrintWriter out = new PrintWriter(tmp, "UTF-8")) {
      out.println("fs.defaultFS=" + fsUri);
      out.println("namenode.web=" + nnHttp.getHostString() + ":" + nnHttp.getPort());
      out.println("resourcemanager.address=" + rm.get(YarnConfiguration.RM_ADDRESS));
      out.println("resourcemanager.web=" + rm.get(YarnConfiguration.RM_WEBAPP_ADDRESS));
      out.println("nodemanager.web=" + node.getHttpAddress());
      out.println("nodemanager.memory-mb=" + node.getCapability().getMemorySize());
      out.println("nodemanager.log-dirs=" + nm.get(YarnConfiguration.NM_LOG_DIRS));
      out.println("nodemanager.local-dirs=" + nm.get(YarnConfiguration.NM_LOCAL_DIRS));
      out.println("pid=" + ProcessHandle.current().pid());
    }
    Files.move(tmp.toPath(), target.toPath(), StandardCopyOption.REPLACE_EXISTING,
        StandardCopyOption.ATOMIC_MOVE);
  }

  private static void stopAll() {
    if (!STOPPING.compareAndSet(false, true)) {
      return;
    }
    long t0 = System.nanoTime();
    if (yarn != null) {
      say("stopping YARN");
      try {
        yarn.stop();
      } catch (Throwable t) {
        t.printStackTrace();
      }
    }
    if (dfs != null) {
      say("stopping HDFS");
      try {
        dfs.shutdown();
      } catch (Throwable t) {
        t.printStackTrace();
      }
    }
    say("stopped in " + ms(t0, System.nanoTime()) + " ms");
  }

  private static void writeXml(Configuration conf, File target) throws IOException {
    File tmp = new File(target.getPath() + ".tmp");
    try (OutputStream out = new FileOutputStream(tmp)) {
      conf.writeXml(out);
    }
    Files.move(tmp.toPath(), target.toPath(), StandardCopyOption.REPLACE_EXISTING,
        StandardCopyOption.ATOMIC_MOVE);
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    }
  }

  private static long ms(long from, long to) {
    return TimeUnit.NANOSECONDS.toMillis(to - from);
  }

  private static void say(String line) {
    System.out.println("[minicluster] " + line);
    System.out.flush();
  }
}
