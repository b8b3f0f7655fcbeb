package dev.voxcache.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * Text to speech in a reference voice. The Synthesizer never computes speaker
 * conditioning itself: it asks the Embedder, which caches it.
 * </pre>
 */
@javax.annotation.Generated(
    value = "by gRPC proto compiler",
    comments = "Source: voxcache/v1/synthesizer.proto")
@io.grpc.stub.annotations.GrpcGenerated
public final class SynthesizerGrpc {

  private SynthesizerGrpc() {}

  public static final String SERVICE_NAME = "voxcache.v1.Synthesizer";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<dev.voxcache.v1.SynthesizeRequest,
      dev.voxcache.v1.SynthesizeResponse> getSynthesizeMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Synthesize",
      requestType = dev.voxcache.v1.SynthesizeRequest.class,
      responseType = dev.voxcache.v1.SynthesizeResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.voxcache.v1.SynthesizeRequest,
      dev.voxcache.v1.SynthesizeResponse> getSynthesizeMethod() {
    io.grpc.MethodDescriptor<dev.voxcache.v1.SynthesizeRequest, dev.voxcache.v1.SynthesizeResponse> getSynthesizeMethod;
    if ((getSynthesizeMethod = SynthesizerGrpc.getSynthesizeMethod) == null) {
      synchronized (SynthesizerGrpc.class) {
        if ((getSynthesizeMethod = SynthesizerGrpc.getSynthesizeMethod) == null) {
          SynthesizerGrpc.getSynthesizeMethod = getSynthesizeMethod =
              io.grpc.MethodDescriptor.<dev.voxcache.v1.SynthesizeRequest, dev.voxcache.v1.SynthesizeResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Synthesize"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.SynthesizeRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.SynthesizeResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SynthesizerMethodDescriptorSupplier("Synthesize"))
              .build();
        }
      }
    }
    return getSynthesizeMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.voxcache.v1.SynthesizeRequest,
      dev.voxcache.v1.SynthesizeStreamResponse> getSynthesizeStreamMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "SynthesizeStream",
      requestType = dev.voxcache.v1.SynthesizeRequest.class,
      responseType = dev.voxcache.v1.SynthesizeStreamResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
  public static io.grpc.MethodDescriptor<dev.voxcache.v1.SynthesizeRequest,
      dev.voxcache.v1.SynthesizeStreamResponse> getSynthesizeStreamMethod() {
    io.grpc.MethodDescriptor<dev.voxcache.v1.SynthesizeRequest, dev.voxcache.v1.SynthesizeStreamResponse> getSynthesizeStreamMethod;
    if ((getSynthesizeStreamMethod = SynthesizerGrpc.getSynthesizeStreamMethod) == null) {
      synchronized (SynthesizerGrpc.class) {
        if ((getSynthesizeStreamMethod = SynthesizerGrpc.getSynthesizeStreamMethod) == null) {
          SynthesizerGrpc.getSynthesizeStreamMethod = getSynthesizeStreamMethod =
              io.grpc.MethodDescriptor.<dev.voxcache.v1.SynthesizeRequest, dev.voxcache.v1.SynthesizeStreamResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "SynthesizeStream"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.SynthesizeRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.SynthesizeStreamResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SynthesizerMethodDescriptorSupplier("SynthesizeStream"))
              .build();
        }
      }
    }
    return getSynthesizeStreamMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static SynthesizerStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<SynthesizerStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<SynthesizerStub>() {
        @java.lang.Override
        public SynthesizerStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new SynthesizerStub(channel, callOptions);
        }
      };
    return SynthesizerStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static SynthesizerBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<SynthesizerBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<SynthesizerBlockingStub>() {
        @java.lang.Override
        public SynthesizerBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new SynthesizerBlockingStub(channel, callOptions);
        }
      };
    return SynthesizerBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static SynthesizerFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<SynthesizerFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<SynthesizerFutureStub>() {
        @java.lang.Override
        public SynthesizerFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new SynthesizerFutureStub(channel, callOptions);
        }
      };
    return SynthesizerFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * Text to speech in a reference voice. The Synthesizer never computes speaker
   * conditioning itself: it asks the Embedder, which caches it.
   * </pre>
   */
  public static abstract class SynthesizerImplBase implements io.grpc.BindableService {

    /**
     * <pre>
     * The whole utterance in one response. Both RPCs take the same request on
     * purpose: the stream must speak exactly what the unary call speaks.
     * buf:lint:ignore RPC_REQUEST_RESPONSE_UNIQUE
     * </pre>
     */
    public void synthesize(dev.voxcache.v1.SynthesizeRequest request,
        io.grpc.stub.StreamObserver<dev.voxcache.v1.SynthesizeResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getSynthesizeMethod(), responseObserver);
    }

    /**
     * <pre>
     * The same utterance, one message per sentence as soon as it is ready.
     * Concatenating every message's `audio` gives exactly the `audio` of
     * Synthesize for the same request with format PCM16; for format WAV, prefix
     * the last message's `wav_header`.
     * buf:lint:ignore RPC_REQUEST_STANDARD_NAME
     * buf:lint:ignore RPC_REQUEST_RESPONSE_UNIQUE
     * </pre>
     */
    public void synthesizeStream(dev.voxcache.v1.SynthesizeRequest request,
        io.grpc.stub.StreamObserver<dev.voxcache.v1.SynthesizeStreamResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getSynthesizeStreamMethod(), responseObserver);
    }

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
          .addMethod(
            getSynthesizeMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.voxcache.v1.SynthesizeRequest,
                dev.voxcache.v1.SynthesizeResponse>(
                  this, METHODID_SYNTHESIZE)))
          .addMethod(
            getSynthesizeStreamMethod(),
            io.grpc.stub.ServerCalls.asyncServerStreamingCall(
              new MethodHandlers<
                dev.voxcache.v1.SynthesizeRequest,
                dev.voxcache.v1.SynthesizeStreamResponse>(
                  this, METHODID_SYNTHESIZE_STREAM)))
          .build();
    }
  }

  /**
   * <pre>
   * Text to speech in a reference voice. The Synthesizer never computes speaker
   * conditioning itself: it asks the Embedder, which caches it.
   * </pre>
   */
  public static final class SynthesizerStub extends io.grpc.stub.AbstractAsyncStub<SynthesizerStub> {
    private SynthesizerStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected SynthesizerStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new SynthesizerStub(channel, callOptions);
    }

    /**
     * <pre>
     * The whole utterance in one response. Both RPCs take the same request on
     * purpose: the stream must speak exactly what the unary call speaks.
     * buf:lint:ignore RPC_REQUEST_RESPONSE_UNIQUE
     * </pre>
     */
    public void synthesize(dev.voxcache.v1.SynthesizeRequest request,
        io.grpc.stub.StreamObserver<dev.voxcache.v1.SynthesizeResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getSynthesizeMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * The same utterance, one message per sentence as soon as it is ready.
     * Concatenating every message's `audio` gives exactly the `audio` of
     * Synthesize for the same request with format PCM16; for format WAV, prefix
     * the last message's `wav_header`.
     * buf:lint:ignore RPC_REQUEST_STANDARD_NAME
     * buf:lint:ignore RPC_REQUEST_RESPONSE_UNIQUE
     * </pre>
     */
    public void synthesizeStream(dev.voxcache.v1.SynthesizeRequest request,
        io.grpc.stub.StreamObserver<dev.voxcache.v1.SynthesizeStreamResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncServerStreamingCall(
          getChannel().newCall(getSynthesizeStreamMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * <pre>
   * Text to speech in a reference voice. The Synthesizer never computes speaker
   * conditioning itself: it asks the Embedder, which caches it.
   * </pre>
   */
  public static final class SynthesizerBlockingStub extends io.grpc.stub.AbstractBlockingStub<SynthesizerBlockingStub> {
    private SynthesizerBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected SynthesizerBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new SynthesizerBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * The whole utterance in one response. Both RPCs take the same request on
     * purpose: the stream must speak exactly what the unary call speaks.
     * buf:lint:ignore RPC_REQUEST_RESPONSE_UNIQUE
     * </pre>
     */
    public dev.voxcache.v1.SynthesizeResponse synthesize(dev.voxcache.v1.SynthesizeRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getSynthesizeMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * The same utterance, one message per sentence as soon as it is ready.
     * Concatenating every message's `audio` gives exactly the `audio` of
     * Synthesize for the same request with format PCM16; for format WAV, prefix
     * the last message's `wav_header`.
     * buf:lint:ignore RPC_REQUEST_STANDARD_NAME
     * buf:lint:ignore RPC_REQUEST_RESPONSE_UNIQUE
     * </pre>
     */
    public java.util.Iterator<dev.voxcache.v1.SynthesizeStreamResponse> synthesizeStream(
        dev.voxcache.v1.SynthesizeRequest request) {
      return io.grpc.stub.ClientCalls.blockingServerStreamingCall(
          getChannel(), getSynthesizeStreamMethod(), getCallOptions(), request);
    }
  }

  /**
   * <pre>
   * Text to speech in a reference voice. The Synthesizer never computes speaker
   * conditioning itself: it asks the Embedder, which caches it.
   * </pre>
   */
  public static final class SynthesizerFutureStub extends io.grpc.stub.AbstractFutureStub<SynthesizerFutureStub> {
    private SynthesizerFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected SynthesizerFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new SynthesizerFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * The whole utterance in one response. Both RPCs take the same request on
     * purpose: the stream must speak exactly what the unary call speaks.
     * buf:lint:ignore RPC_REQUEST_RESPONSE_UNIQUE
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.voxcache.v1.SynthesizeResponse> synthesize(
        dev.voxcache.v1.SynthesizeRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getSynthesizeMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_SYNTHESIZE = 0;
  private static final int METHODID_SYNTHESIZE_STREAM = 1;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final SynthesizerImplBase serviceImpl;
    private final int methodId;

    MethodHandlers(SynthesizerImplBase serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_SYNTHESIZE:
          serviceImpl.synthesize((dev.voxcache.v1.SynthesizeRequest) request,
              (io.grpc.stub.StreamObserver<dev.voxcache.v1.SynthesizeResponse>) responseObserver);
          break;
        case METHODID_SYNTHESIZE_STREAM:
          serviceImpl.synthesizeStream((dev.voxcache.v1.SynthesizeRequest) request,
              (io.grpc.stub.StreamObserver<dev.voxcache.v1.SynthesizeStreamResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        default:
          throw new AssertionError();
      }
    }
  }

  private static abstract class SynthesizerBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    SynthesizerBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return dev.voxcache.v1.SynthesizerProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("Synthesizer");
    }
  }

  private static final class SynthesizerFileDescriptorSupplier
      extends SynthesizerBaseDescriptorSupplier {
    SynthesizerFileDescriptorSupplier() {}
  }

  private static final class SynthesizerMethodDescriptorSupplier
      extends SynthesizerBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final String methodName;

    SynthesizerMethodDescriptorSupplier(String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (SynthesizerGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new SynthesizerFileDescriptorSupplier())
              .addMethod(getSynthesizeMethod())
              .addMethod(getSynthesizeStreamMethod())
              .build();
        }
      }
    }
    return result;
  }
}
